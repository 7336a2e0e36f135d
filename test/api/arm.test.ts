// ARM conventions every resource shares: authentication and roles,
// api-version, the error envelope, ETags, paging, subscriptions and regions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/pg.js';
import { COMPUTE, LABFORGE, RESOURCES, startTestServer, type TestServer } from '../helpers/server.js';

describe.each(DIALECTS)('ARM conventions (%s)', (dialect) => {
  let t: TestServer;
  let base: string;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    expect((await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/conv?${RESOURCES}`, { location: 'site-a', tags: { dept: 'it' } })).status).toBe(201);
    base = `/subscriptions/${t.sub}/resourceGroups/conv/providers/Microsoft.Compute/galleries`;
  });
  afterAll(async () => t?.close());

  describe('authentication and roles', () => {
    it('answers 401 without a token, with a bad token, and for a token in the query string', async () => {
      const none = await t.call('GET', `${base}?${COMPUTE}`, undefined, { token: null });
      expect(none.status).toBe(401);
      expect(none.body.error.code).toBe('AuthenticationFailed');
      expect(none.headers['www-authenticate']).toContain('Bearer');
      const bad = await t.call('GET', `${base}?${COMPUTE}`, undefined, { token: 'lfg_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' });
      expect(bad.status).toBe(401);
      expect(bad.body.error.code).toBe('InvalidAuthenticationToken');
      const inQuery = await t.call('GET', `${base}?${COMPUTE}&access_token=${t.adminToken}`, undefined, { token: null });
      expect(inQuery.status).toBe(401);
      expect(inQuery.body.error.message).toContain('never accepted in the URL');
    });

    it('answers 403 to a valid token with the wrong role and changes nothing', async () => {
      const creator = await t.tokenFor('creator', 'teacher@school');
      const student = await t.tokenFor('user', 'student@school');
      const put = await t.call('PUT', `${base}/byCreator?${COMPUTE}`, { location: 'site-a' }, { token: creator });
      expect(put.status).toBe(403);
      expect(put.body.error.code).toBe('AuthorizationFailed');
      expect(put.body.error.message).toContain("role 'creator'");
      expect((await t.call('GET', `${base}/byCreator?${COMPUTE}`)).status).toBe(404);
      // Creators may read galleries; students may not.
      expect((await t.call('GET', `${base}?${COMPUTE}`, undefined, { token: creator })).status).toBe(200);
      expect((await t.call('GET', `${base}?${COMPUTE}`, undefined, { token: student })).status).toBe(403);
      expect((await t.call('POST', `/providers/Labforge.Core/tokens?${LABFORGE}`, { name: 'x', role: 'admin' }, { token: creator })).status).toBe(403);
      expect((await t.call('DELETE', `/subscriptions/${t.sub}/resourcegroups/conv?${RESOURCES}`, undefined, { token: creator })).status).toBe(403);
      expect((await t.call('GET', `/subscriptions/${t.sub}/resourcegroups/conv?${RESOURCES}`)).status).toBe(200);
    });

    it('stores tokens hashed, shows the secret once, and refuses a revoked token', async () => {
      const created = await t.call('POST', `/providers/Labforge.Core/tokens?${LABFORGE}`, { name: 'ci', role: 'creator', subject: 'pipeline' });
      expect(created.status).toBe(201);
      const token: string = created.body.token;
      expect(token).toMatch(/^lfg_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
      const rows = await t.server.services.store.db.selectFrom('tokens').selectAll().execute();
      const secret = token.split('_').slice(2).join('_');
      for (const r of rows) expect(JSON.stringify(r)).not.toContain(secret);
      const list = await t.call('GET', `/providers/Labforge.Core/tokens?${LABFORGE}`);
      expect(JSON.stringify(list.body)).not.toContain(secret);
      const who = await t.call('GET', '/providers/Labforge.Core/whoami', undefined, { token });
      expect(who.body).toMatchObject({ subject: 'pipeline', role: 'creator' });
      const revoked = await t.call('DELETE', `/providers/Labforge.Core/tokens/${created.body.name}?${LABFORGE}`);
      expect(revoked.body.properties.state).toBe('Revoked');
      expect((await t.call('GET', '/providers/Labforge.Core/whoami', undefined, { token })).status).toBe(401);
    });
  });

  describe('api-version', () => {
    it('is required and must be a supported version; the error lists the supported ones', async () => {
      const missing = await t.call('GET', base);
      expect(missing.status).toBe(400);
      expect(missing.body.error.code).toBe('MissingApiVersionParameter');
      expect(missing.body.error.message).toContain('2025-03-03');
      const unknown = await t.call('GET', `${base}?api-version=1999-01-01`);
      expect(unknown.status).toBe(400);
      expect(unknown.body.error.code).toBe('InvalidApiVersionParameter');
      const rgWrongFamily = await t.call('GET', `/subscriptions/${t.sub}/resourcegroups/conv?api-version=2025-03-03`);
      expect(rgWrongFamily.body.error.code).toBe('InvalidApiVersionParameter');
    });
  });

  describe('error envelope', () => {
    it('answers malformed JSON, wrong types and unknown paths with ARM errors', async () => {
      const malformed = await t.call('PUT', `${base}/g?${COMPUTE}`, '{"location": "site-a",');
      expect(malformed.status).toBe(400);
      expect(malformed.body.error.code).toBe('InvalidRequestContent');
      expect(malformed.body.error.message).toContain('not valid JSON');
      const wrongType = await t.call('PUT', `${base}/g?${COMPUTE}`, { location: 'site-a', tags: { a: 5 } });
      expect(wrongType.status).toBe(400);
      expect(wrongType.body.error.target).toBe('tags.a');
      expect(wrongType.body.error.details[0].code).toBe('InvalidParameter');
      const unknownPath = await t.call('GET', `/subscriptions/${t.sub}/providers/Microsoft.Nope/things?${COMPUTE}`);
      expect(unknownPath.status).toBe(404);
      expect(unknownPath.body.error.code).toBe('InvalidResourceType');
      const noSub = await t.call('GET', `/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/conv?${RESOURCES}`);
      expect(noSub.status).toBe(404);
      expect(noSub.body.error.code).toBe('SubscriptionNotFound');
      const noRg = await t.call('GET', `/subscriptions/${t.sub}/resourceGroups/nope/providers/Microsoft.Compute/galleries/x?${COMPUTE}`);
      expect(noRg.body.error.code).toBe('ResourceGroupNotFound');
      expect((await t.call('GET', `${base}/g?${COMPUTE}`)).status).toBe(404);
    });
  });

  describe('resource shape', () => {
    it('returns id, name, type, location, tags, properties.provisioningState and systemData', async () => {
      const creator = await t.call('PUT', `${base}/shape?${COMPUTE}`, { location: 'site-a', tags: { course: 'chem' }, properties: { description: 'd' } });
      expect(creator.status).toBe(201);
      const g = (await t.call('GET', `${base}/shape?${COMPUTE}`)).body;
      expect(g).toMatchObject({
        id: `${base}/shape`,
        name: 'shape',
        type: 'Microsoft.Compute/galleries',
        location: 'site-a',
        tags: { course: 'chem' },
        properties: { provisioningState: 'Succeeded', description: 'd' },
        systemData: { createdBy: 'admin', createdByType: 'User', lastModifiedBy: 'admin' },
      });
      expect(Date.parse(g.systemData.createdAt)).not.toBeNaN();
    });
  });

  describe('ETags', () => {
    it('refuses a stale If-Match with 412 and accepts the current ETag', async () => {
      const created = await t.call('PUT', `${base}/etag?${COMPUTE}`, { location: 'site-a' });
      const etag = created.headers.etag as string;
      expect(etag).toBe(created.body.etag);
      const first = await t.call('PATCH', `${base}/etag?${COMPUTE}`, { tags: { by: 'alice' } }, { headers: { 'if-match': etag } });
      expect(first.status).toBe(200);
      expect(first.headers.etag).not.toBe(etag);
      const stale = await t.call('PATCH', `${base}/etag?${COMPUTE}`, { tags: { by: 'bob' } }, { headers: { 'if-match': etag } });
      expect(stale.status).toBe(412);
      expect(stale.body.error.code).toBe('PreconditionFailed');
      expect((await t.call('GET', `${base}/etag?${COMPUTE}`)).body.tags).toEqual({ by: 'alice' });
      const staleDelete = await t.call('DELETE', `${base}/etag?${COMPUTE}`, undefined, { headers: { 'if-match': etag } });
      expect(staleDelete.status).toBe(412);
      expect((await t.call('GET', `${base}/etag?${COMPUTE}`)).status).toBe(200);
    });

    it('honours If-None-Match: * as create-only', async () => {
      const h = { headers: { 'if-none-match': '*' } };
      expect((await t.call('PUT', `${base}/once?${COMPUTE}`, { location: 'site-a', properties: { description: 'first' } }, h)).status).toBe(201);
      const again = await t.call('PUT', `${base}/once?${COMPUTE}`, { location: 'site-a', properties: { description: 'second' } }, h);
      expect(again.status).toBe(412);
      expect((await t.call('GET', `${base}/once?${COMPUTE}`)).body.properties.description).toBe('first');
      expect((await t.call('PUT', `${base}/ghost?${COMPUTE}`, { location: 'site-a' }, { headers: { 'if-match': '*' } })).status).toBe(412);
    });

    it('lets only one of two concurrent writers with the same ETag win', async () => {
      const created = await t.call('PUT', `${base}/race?${COMPUTE}`, { location: 'site-a' });
      const etag = created.headers.etag as string;
      const results = await Promise.all(
        ['one', 'two', 'three'].map((who) => t.call('PATCH', `${base}/race?${COMPUTE}`, { tags: { who } }, { headers: { 'if-match': etag } })),
      );
      expect(results.map((r) => r.status).sort()).toEqual([200, 412, 412]);
    });
  });

  describe('paging', () => {
    it('walks every item exactly once through nextLink', async () => {
      expect((await t.call('PUT', `${base}/paged?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
      const names = Array.from({ length: 23 }, (_, i) => `img-${String(i).padStart(2, '0')}`);
      for (const n of names) {
        const r = await t.call('PUT', `${base}/paged/images/${n}?${COMPUTE}`, {
          location: 'site-a',
          properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'p', offer: 'o', sku: n } },
        });
        expect(r.status).toBe(201);
      }
      const seen: string[] = [];
      let url: string | undefined = `${base}/paged/images?${COMPUTE}&$top=5`;
      let pages = 0;
      while (url && pages < 20) {
        const r = await t.call('GET', url);
        expect(r.status).toBe(200);
        expect(r.body.value.length).toBeLessThanOrEqual(5);
        seen.push(...r.body.value.map((x: { name: string }) => x.name));
        url = r.body.nextLink ? new URL(r.body.nextLink).pathname + new URL(r.body.nextLink).search : undefined;
        pages++;
      }
      expect(pages).toBe(5);
      expect(seen).toEqual(names);
      const bad = await t.call('GET', `${base}/paged/images?${COMPUTE}&$top=0`);
      expect(bad.status).toBe(400);
    });
  });

  describe('subscriptions, regions and resource groups', () => {
    it('lists the default subscription and the configured regions with their geography', async () => {
      const subs = await t.call('GET', '/subscriptions?api-version=2022-12-01');
      expect(subs.body.value).toHaveLength(1);
      expect(subs.body.value[0]).toMatchObject({ subscriptionId: t.sub, state: 'Enabled' });
      expect((await t.call('GET', `/subscriptions/${t.sub}?api-version=2022-12-01`)).body.displayName).toBe('Default');
      expect((await t.call('GET', '/subscriptions/nope?api-version=2022-12-01')).body.error.code).toBe('SubscriptionNotFound');
      const locs = await t.call('GET', `/subscriptions/${t.sub}/locations?api-version=2022-12-01`);
      expect(locs.body.value.map((l: { name: string }) => l.name)).toEqual(['site-a', 'site-b']);
      expect(locs.body.value[0].metadata.geographyGroup).toBe('local');
    });

    it('creates, updates, lists and deletes resource groups', async () => {
      const rg = `/subscriptions/${t.sub}/resourcegroups/temp`;
      expect((await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-b' })).status).toBe(201);
      const upd = await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-b', tags: { a: 'b' } });
      expect(upd.status).toBe(200);
      expect(upd.body.tags).toEqual({ a: 'b' });
      const move = await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-a' });
      expect(move.status).toBe(409);
      const list = await t.call('GET', `/subscriptions/${t.sub}/resourcegroups?${RESOURCES}`);
      expect(list.body.value.map((g: { name: string }) => g.name)).toContain('temp');
      expect((await t.call('DELETE', `${rg}?${RESOURCES}`)).status).toBe(200);
      expect((await t.call('GET', `${rg}?${RESOURCES}`)).body.error.code).toBe('ResourceGroupNotFound');
    });
  });

  it('serves an OpenAPI document without a token', async () => {
    const r = await t.call('GET', '/openapi.json', undefined, { token: null });
    expect(r.status).toBe(200);
    expect(r.body.openapi).toMatch(/^3\./);
    expect(Object.keys(r.body.paths)).toContain(
      '/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/{gallery}/images/{image}/versions/{version}',
    );
  });
});
