// Resource names follow one rule per kind on every route, and "." and ".."
// are never names: sent as they are (or percent-encoded) they are refused,
// not resolved as a path to another resource.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameProblem } from '../../src/lib/names.js';
import { COMPUTE, LABFORGE, RESOURCES, startTestServer, type TestServer } from '../helpers/server.js';

const LS = 'api-version=2022-08-01';

/** A request over the socket with the path exactly as given (clients like fetch would resolve the dot segments first). */
function raw(t: TestServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const url = new URL(t.server.url);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          authorization: `Bearer ${t.adminToken}`,
          ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

describe('resource names', () => {
  let t: TestServer;
  let rg: string;
  beforeAll(async () => {
    t = await startTestServer('sqlite', { env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    rg = `/subscriptions/${t.sub}/resourceGroups/rg`;
    expect((await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    expect((await t.call('PUT', `${rg}/providers/Microsoft.Compute/galleries/g?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('never takes "." or ".." (as they are, or percent-encoded) or a name with a leading or trailing period', async () => {
    const image = { location: 'site-a', properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'p', offer: 'o', sku: 's' } } };
    const plan = { location: 'site-a', properties: {} };
    for (const name of ['..', '.', '%2E%2E', '%2e', '.hidden', 'trailing.']) {
      for (const [path, body] of [
        [`${rg}/providers/Microsoft.Compute/galleries/g/images/${name}?${COMPUTE}`, image],
        [`${rg}/providers/Microsoft.LabServices/labPlans/${name}?${LS}`, plan],
      ] as const) {
        const r = await raw(t, 'PUT', path, body);
        expect([400, 404], `${name}: ${path} → ${r.status} ${JSON.stringify(r.body)}`).toContain(r.status);
      }
    }
    // Nothing was made or changed by those: the gallery has no image, no plan exists, the gallery kept its shape.
    expect((await t.call('GET', `${rg}/providers/Microsoft.Compute/galleries/g/images?${COMPUTE}`)).body.value).toEqual([]);
    expect((await t.call('GET', `${rg}/providers/Microsoft.LabServices/labPlans?${LS}`)).body.value).toEqual([]);
    const g = await t.call('GET', `${rg}/providers/Microsoft.Compute/galleries/g?${COMPUTE}`);
    expect(g.body.properties.osType).toBeUndefined();
    expect((await t.call('GET', `/providers/Labforge.Core/whoami?${LABFORGE}`)).status).toBe(200);
  });

  it('states one rule per kind, the same wherever a name is given', () => {
    for (const kind of ['resourceGroup', 'gallery', 'image', 'vm', 'labPlan', 'lab', 'labUser', 'schedule'] as const) {
      for (const bad of ['.', '..', 'a.', '', 'x'.repeat(200)]) expect(nameProblem(kind, bad), `${kind} '${bad}'`).toMatch(/is not valid: use /);
      expect(nameProblem(kind, 'Physics101'), kind).toBeUndefined();
    }
    expect(nameProblem('labUser', '(kim)')).toBeUndefined();
    expect(nameProblem('gallery', 'no-hyphens')).toMatch(/no hyphens/);
  });
});
