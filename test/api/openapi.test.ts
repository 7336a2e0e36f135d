// The OpenAPI document the server serves at GET /openapi.json describes every
// operation completely: each declares the answer of its success status (a JSON
// schema, or explicitly no body), the ARM error envelope for 4xx and 5xx, and
// the body it takes. The schemas are the wire contract's (src/contract), and
// the server serialises its answers with them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

interface OpenApiResponse {
  description: string;
  content?: Record<string, { schema?: { type?: string; properties?: Record<string, unknown> } }>;
}
interface OpenApiOperation {
  summary?: string;
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses: Record<string, OpenApiResponse>;
}
interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OpenApiOperation>>;
}

const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head'];

describe('the OpenAPI document', () => {
  let t: TestServer;
  let doc: OpenApiDocument;
  const operations: Array<{ name: string; method: string; op: OpenApiOperation }> = [];

  beforeAll(async () => {
    t = await startTestServer('sqlite');
    const r = await t.call<OpenApiDocument>('GET', '/openapi.json', undefined, { token: null });
    expect(r.status).toBe(200);
    doc = r.body;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) if (METHODS.includes(method)) operations.push({ name: `${method.toUpperCase()} ${path}`, method, op });
    }
  });
  afterAll(async () => t?.close());

  it('lists the API: resource groups, galleries, VMs, Lab Services and labforge’s own resources', () => {
    expect(operations.length).toBeGreaterThanOrEqual(95);
    const paths = Object.keys(doc.paths).join('\n');
    for (const part of [
      '/resourcegroups/',
      '/galleries/',
      '/virtualMachines/',
      '/labPlans/',
      '/labs/',
      '/schedules/',
      '/operations/',
      '/tokens',
      '/accounts',
      '/hosts',
    ])
      expect(paths).toContain(part);
  });

  it('declares the answer of the success status of every operation: a JSON schema, or explicitly no body', () => {
    const missing: string[] = [];
    for (const { name, op } of operations) {
      const success = Object.entries(op.responses ?? {}).filter(([status]) => /^2/.test(status));
      if (success.length === 0) missing.push(`${name}: no 2xx answer`);
      for (const [status, res] of success) {
        // An undeclared answer has no content and the description 'Default Response'; a declared body-less one says so in words.
        if (!res.content && res.description === 'Default Response') missing.push(`${name} ${status}: undeclared`);
        if (res.content) {
          const schema = Object.values(res.content)[0]?.schema;
          if (!schema || (schema.type === 'object' && !schema.properties)) missing.push(`${name} ${status}: no schema of the body`);
        }
      }
    }
    expect(missing, missing.join('\n')).toEqual([]);
  });

  it('declares the ARM error envelope for 4xx and 5xx answers of every operation', () => {
    const missing: string[] = [];
    for (const { name, op } of operations) {
      for (const status of ['4XX', '5XX']) {
        const schema = op.responses?.[status]?.content?.['application/json']?.schema as
          | { properties?: { error?: { properties?: Record<string, unknown> } } }
          | undefined;
        if (!schema?.properties?.error?.properties?.code || !schema.properties.error.properties.message) missing.push(`${name} ${status}`);
      }
    }
    expect(missing, missing.join('\n')).toEqual([]);
  });

  it('declares the body of every PUT and PATCH', () => {
    const missing = operations
      .filter(({ method }) => method === 'put' || method === 'patch')
      .filter(({ op }) => !op.requestBody?.content?.['application/json']?.schema)
      .map(({ name }) => name);
    expect(missing, missing.join('\n')).toEqual([]);
  });
});
