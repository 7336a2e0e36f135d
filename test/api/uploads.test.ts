// Resumable uploads over tus: authenticated, owned by the uploader, resumable.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

function upload(t: TestServer, token: string, data: Buffer, opts: { uploadUrl?: string; stopAfter?: number } = {}) {
  return new Promise<{ url: string; offsets: number[] }>((resolve, reject) => {
    const offsets: number[] = [];
    const u = new tus.Upload(data, {
      endpoint: `${t.server.url}/uploads`,
      uploadUrl: opts.uploadUrl,
      headers: { authorization: `Bearer ${token}` },
      chunkSize: 1 << 20,
      retryDelays: [],
      metadata: { filename: 'disk.raw' },
      onChunkComplete: (_chunk, sent) => {
        offsets.push(sent);
        if (opts.stopAfter && sent >= opts.stopAfter) {
          void u.abort().then(() => resolve({ url: u.url as string, offsets }));
        }
      },
      onSuccess: () => resolve({ url: u.url as string, offsets }),
      onError: reject,
    });
    u.start();
  });
}

describe('uploads', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('sqlite', { tls: false });
  });
  afterAll(async () => t?.close());

  it('accepts a disk from a creator, records the owner, and refuses others', async () => {
    const creator = await t.tokenFor('creator', 'teacher-a');
    const data = randomBytes(3 * (1 << 20) + 123);
    const { url } = await upload(t, creator, data);
    const id = url.split('/').pop() as string;
    const info = await t.server.services.uploads.get(id);
    expect(info).toMatchObject({ size: data.length, offset: data.length, owner: 'teacher-a', complete: true, filename: 'disk.raw' });
    expect(Buffer.compare(readFileSync(info!.path), data)).toBe(0);

    const other = await t.tokenFor('creator', 'teacher-b');
    const head = await t.call('HEAD', `/uploads/${id}`, undefined, { token: other, headers: { 'tus-resumable': '1.0.0' } });
    expect(head.status).toBe(403);
    const student = await t.tokenFor('user', 'student');
    const post = await t.call('POST', '/uploads', undefined, { token: student, headers: { 'tus-resumable': '1.0.0', 'upload-length': '10' } });
    expect(post.status).toBe(403);
    const anon = await t.call('POST', '/uploads', undefined, { token: null, headers: { 'tus-resumable': '1.0.0', 'upload-length': '10' } });
    expect(anon.status).toBe(401);
  });

  it('resumes an interrupted upload from where it stopped', async () => {
    const creator = await t.tokenFor('creator', 'teacher-c');
    const data = randomBytes(4 * (1 << 20));
    const first = await upload(t, creator, data, { stopAfter: 2 << 20 });
    const id = first.url.split('/').pop() as string;
    const partial = await t.server.services.uploads.get(id);
    expect(partial?.complete).toBe(false);
    expect(partial?.offset).toBeGreaterThanOrEqual(2 << 20);
    const second = await upload(t, creator, data, { uploadUrl: first.url });
    // The resumed upload starts past what arrived before.
    expect(second.offsets[0]).toBeGreaterThan(2 << 20);
    const done = await t.server.services.uploads.get(id);
    expect(done?.complete).toBe(true);
    expect(Buffer.compare(readFileSync(done!.path), data)).toBe(0);
  });

  it('refuses an upload larger than the configured disk limit', async () => {
    const creator = await t.tokenFor('creator');
    const r = await t.call('POST', '/uploads', undefined, {
      token: creator,
      headers: { 'tus-resumable': '1.0.0', 'upload-length': String(t.server.services.config.images.maxDiskBytes + 1) },
    });
    expect(r.status).toBe(413);
  });
});
