// Starts a real labforge server for a test: a temporary data directory, the
// chosen metadata store, a loopback port. Requests go through Fastify's
// inject (same routes, hooks and handlers) unless a test needs the socket.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { API_VERSION, type CreatedToken } from '../../src/contract/index.js';
import { type RunningServer, startServer } from '../../src/server.js';
import { createPgDatabase } from './pg.js';

export interface TestServer {
  server: RunningServer;
  dataDir: string;
  adminToken: string;
  sub: string;
  /**
   * Sends a request with a token (the admin's unless given) and returns status, headers and parsed JSON.
   * Name the body's type from the contract (`t.call<Gallery>('GET', …)`); without one the body is `Untyped`.
   */
  call<T = Untyped>(method: string, path: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string> }): Promise<TestResponse<T>>;
  tokenFor(role: 'admin' | 'creator' | 'user', subject?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * The explicit opt-out of typed bodies: what `call` gives when the test names no contract type
 * (error envelopes, malformed answers, tests written before the contract).
 */
// biome-ignore lint/suspicious/noExplicitAny: the one opt-out, named so that it is visible where it is used
export type Untyped = any;

/** An answer: `body` is the parsed JSON, of the contract type the caller named (src/contract). */
export interface TestResponse<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

export async function startTestServer(
  dialect: 'sqlite' | 'postgres',
  opts: { tls?: boolean; env?: Record<string, string>; dataDir?: string } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'labforge-test-'));
  const pgdb = dialect === 'postgres' ? await createPgDatabase() : undefined;
  const config = loadConfig({
    env: {
      LABFORGE_DATA_DIR: dataDir,
      LABFORGE_LISTEN: '127.0.0.1:0',
      LABFORGE_TLS: opts.tls ? '1' : '0',
      LABFORGE_BUILTIN_IMAGES: 'off',
      ...(pgdb ? { LABFORGE_DATABASE_URL: pgdb.url } : {}),
      ...opts.env,
    },
  });
  config.operations.pollMilliseconds = 50;
  const server = await startServer(config);
  const adminToken = server.firstAdminToken as string;
  const sub = (await server.services.groups.listSubscriptions())[0]?.id as string;
  const call = async <T = Untyped>(
    method: string,
    path: string,
    body?: unknown,
    o: { token?: string | null; headers?: Record<string, string> } = {},
  ): Promise<TestResponse<T>> => {
    const token = o.token === undefined ? adminToken : o.token;
    const res = await server.app.inject({
      method: method as 'GET',
      url: path,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...o.headers,
      },
      payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    let parsed: unknown;
    try {
      parsed = res.body ? JSON.parse(res.body) : undefined;
    } catch {
      parsed = res.body;
    }
    return { status: res.statusCode, headers: res.headers, body: parsed as T };
  };
  return {
    server,
    dataDir,
    adminToken,
    sub,
    call,
    tokenFor: async (role, subject) => {
      const r = await call<CreatedToken>('POST', `/providers/Labforge.Core/tokens?${LABFORGE}`, {
        name: `${role}-${Math.random().toString(36).slice(2, 8)}`,
        role,
        subject,
      });
      if (r.status !== 201) throw new Error(`token create failed: ${JSON.stringify(r.body)}`);
      return r.body.token;
    },
    close: async () => {
      await server.close();
      await pgdb?.drop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const COMPUTE = `api-version=${API_VERSION.compute}`;
export const RESOURCES = `api-version=${API_VERSION.resources}`;
export const LABFORGE = `api-version=${API_VERSION.labforge}`;
export const LABSERVICES = `api-version=${API_VERSION.labServices}`;

/** Polls an operation URL (path + query) until it leaves InProgress, at most `ms` milliseconds. */
export async function waitForOperation(t: TestServer, operationUrl: string, ms = 20_000): Promise<Untyped> {
  const u = new URL(operationUrl);
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await t.call('GET', `${u.pathname}${u.search}`);
    if (r.body?.status !== 'InProgress') return r.body;
    if (Date.now() > deadline) throw new Error(`operation still InProgress after ${ms} ms: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
