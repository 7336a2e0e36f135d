// Reads of galleries, image definitions and versions are answered from a cache
// while the database has not changed (src/api/response-cache.ts), and a token
// verified a moment ago is not read again while nothing changed
// (src/api/verified-tokens.ts). Whatever changes the database — a write
// through the API, a commit by another connection or server process sharing
// the SQLite file, a revoked token — is seen by the very next request, and
// roles are checked on every request.
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GalleryImage, Page } from '../../src/contract/index.js';
import { COMPUTE, LABFORGE, RESOURCES, startTestServer, type TestServer } from '../helpers/server.js';

describe('answers kept while the database is unchanged (SQLite)', () => {
  let t: TestServer;
  let gallery: string;
  let image: string;

  beforeAll(async () => {
    t = await startTestServer('sqlite');
    const rg = `/subscriptions/${t.sub}/resourceGroups/cache`;
    await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-a' });
    gallery = `${rg}/providers/Microsoft.Compute/galleries/kept`;
    await t.call('PUT', `${gallery}?${COMPUTE}`, { location: 'site-a' });
    image = `${gallery}/images/one`;
    const r = await t.call('PUT', `${image}?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'p', offer: 'o', sku: 's' }, description: 'first' },
    });
    expect(r.status).toBe(201);
  });
  afterAll(async () => t?.close());

  const description = async (path = `${image}?${COMPUTE}`) => (await t.call<GalleryImage>('GET', path)).body.properties.description;

  it('answers the same bytes and ETag again, and a write through the API is seen at once', async () => {
    const a = await t.call<GalleryImage>('GET', `${image}?${COMPUTE}`);
    const b = await t.call<GalleryImage>('GET', `${image}?${COMPUTE}`);
    expect(b.body).toEqual(a.body);
    expect(b.headers.etag).toBe(a.headers.etag);
    expect(b.headers['x-ms-request-id']).not.toBe(a.headers['x-ms-request-id']);
    const patched = await t.call<GalleryImage>('PATCH', `${image}?${COMPUTE}`, { properties: { description: 'second' } });
    expect(patched.status).toBe(200);
    expect(await description()).toBe('second');
    const list = await t.call<Page<GalleryImage>>('GET', `${gallery}/images?${COMPUTE}`);
    expect(list.body.value.map((i) => i.properties.description)).toEqual(['second']);
    expect((await t.call('GET', `${image}?${COMPUTE}`)).headers.etag).toBe(patched.headers.etag);
  });

  it('sees a commit made by another connection to the same database file (another server process)', async () => {
    expect(await description()).toBe('second');
    const other = new SQLite(join(t.dataDir, 'labforge.db'));
    try {
      other.prepare("UPDATE gallery_images SET description = 'changed elsewhere' WHERE name = 'one'").run();
    } finally {
      other.close();
    }
    expect(await description()).toBe('changed elsewhere');
  });

  it('checks the token and the role on every request, kept answer or not', async () => {
    const creator = await t.tokenFor('creator');
    expect((await t.call('GET', `${image}?${COMPUTE}`, undefined, { token: creator })).status).toBe(200);
    const student = await t.tokenFor('user');
    expect((await t.call('GET', `${image}?${COMPUTE}`, undefined, { token: student })).status).toBe(403);
    const tokens = (await t.call<Page<{ name: string; properties: { subject: string; role: string } }>>('GET', `/providers/Labforge.Core/tokens?${LABFORGE}`))
      .body;
    const id = tokens.value.find((x) => x.properties.role === 'creator')?.name;
    expect((await t.call('DELETE', `/providers/Labforge.Core/tokens/${id}?${LABFORGE}`)).status).toBe(200);
    expect((await t.call('GET', `${image}?${COMPUTE}`, undefined, { token: creator })).status).toBe(401);
    expect((await t.call('GET', `${image}?${COMPUTE}`, undefined, { token: null })).status).toBe(401);
  });

  it('refuses at once a token revoked, or given another role, by another connection to the database', async () => {
    const creator = await t.tokenFor('creator', 'elsewhere');
    expect((await t.call('GET', `${image}?${COMPUTE}`, undefined, { token: creator })).status).toBe(200);
    const id = creator.split('_')[1];
    const other = new SQLite(join(t.dataDir, 'labforge.db'));
    try {
      other.prepare("UPDATE tokens SET role = 'user' WHERE id = ?").run(id);
      expect((await t.call('GET', `${image}?${COMPUTE}`, undefined, { token: creator })).status).toBe(403);
      other.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ?').run(new Date().toISOString(), id);
      expect((await t.call('GET', `${image}?${COMPUTE}`, undefined, { token: creator })).status).toBe(401);
    } finally {
      other.close();
    }
  });

  it('keeps no refusal: a missing image answers 404 until it exists', async () => {
    const missing = `${gallery}/images/two?${COMPUTE}`;
    expect((await t.call('GET', missing)).status).toBe(404);
    expect((await t.call('GET', missing)).status).toBe(404);
    await t.call('PUT', missing, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'p', offer: 'o', sku: 't' } },
    });
    expect((await t.call('GET', missing)).status).toBe(200);
  });
});
