import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/pg.js';
import { COMPUTE, startTestServer, type TestServer } from './helpers/server.js';

describe.each(DIALECTS)('smoke (%s)', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(dialect);
  });
  afterAll(async () => t?.close());

  it('lists galleries of a new store as empty', async () => {
    const r = await t.call('GET', `/subscriptions/${t.sub}/providers/Microsoft.Compute/galleries?${COMPUTE}`);
    expect(r.status).toBe(200);
    expect(r.body.value).toEqual([]);
  });
});
