// A server process killed with SIGKILL in the middle of an operation: the
// next start finds the operation, resumes it where it stopped, and completes it.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/services/token.service.js';
import { createPgDatabase, DIALECTS } from '../helpers/pg.js';
import { serveProcess } from '../helpers/serve-process.js';
import { COMPUTE, RESOURCES } from '../helpers/server.js';

describe.each(DIALECTS)('crash recovery (%s)', (dialect) => {
  let dataDir: string;
  let dbEnv: Record<string, string> = {};
  let dropDb: (() => Promise<void>) | undefined;
  const token = TokenService.generate().token;
  const procs: ChildProcess[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'labforge-crash-'));
    if (dialect === 'postgres') {
      const pg = await createPgDatabase();
      dbEnv = { LABFORGE_DATABASE_URL: pg.url };
      dropDb = pg.drop;
    }
  });
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await dropDb?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('resumes an operation interrupted by SIGKILL and completes it on the next start', async () => {
    const env = {
      LABFORGE_DATA_DIR: dataDir,
      LABFORGE_LISTEN: '127.0.0.1:0',
      LABFORGE_TLS: '0',
      LABFORGE_ADMIN_TOKEN: token,
      LABFORGE_LEASE_SECONDS: '2',
      ...dbEnv,
    };
    // Each step pauses 1.5 s, so the kill lands between steps.
    const first = await serveProcess({ ...env, LABFORGE_FAULT_INJECTION: 'step-delay-ms=1500' });
    procs.push(first.child);
    const call = async (base: string, method: string, path: string, body?: unknown) => {
      const r = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: r.status, headers: r.headers, body: await r.json().catch(() => undefined) };
    };
    const subs = await call(first.url, 'GET', '/subscriptions?api-version=2022-12-01');
    const sub = subs.body.value[0].subscriptionId as string;
    const g = `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/gal`;
    expect((await call(first.url, 'PUT', `/subscriptions/${sub}/resourcegroups/rg?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    expect((await call(first.url, 'PUT', `${g}?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
    const img = { location: 'site-a', properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'p', offer: 'o', sku: 's' } } };
    expect((await call(first.url, 'PUT', `${g}/images/img?${COMPUTE}`, img)).status).toBe(201);
    const created = await call(first.url, 'PUT', `${g}/images/img/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: {
        publishingProfile: { targetRegions: [{ name: 'site-a' }, { name: 'site-b' }] },
        storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=2' } } },
      },
    });
    expect(created.status).toBe(201);
    const opUrl = new URL(created.headers.get('azure-asyncoperation') as string);
    const opPath = `${opUrl.pathname}${opUrl.search}`;

    // Wait until the first step is checkpointed, then kill the server without warning.
    let before: any;
    for (let i = 0; i < 200; i++) {
      before = (await call(first.url, 'GET', opPath)).body;
      if (before.percentComplete >= 10) break;
      await sleep(25);
    }
    expect(before.status).toBe('InProgress');
    expect(before.percentComplete).toBeGreaterThanOrEqual(10);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const second = await serveProcess(env);
    procs.push(second.child);
    let after: any;
    for (let i = 0; i < 300; i++) {
      after = (await call(second.url, 'GET', opPath)).body;
      if (after.status !== 'InProgress') break;
      await sleep(50);
    }
    expect(after.status, second.output()).toBe('Succeeded');
    expect(after.percentComplete).toBe(100);
    expect(after.properties.attempts).toBe(2);
    const v = await call(second.url, 'GET', `${g}/images/img/versions/1.0.0?${COMPUTE}&$expand=ReplicationStatus`);
    expect(v.body.properties.provisioningState).toBe('Succeeded');
    expect(v.body.properties.replicationStatus.summary.map((s: { state: string }) => s.state)).toEqual(['Completed', 'Completed']);
    // The preset admin token was used only for the new store: a restart does not print a new one.
    expect(second.output()).not.toContain('admin token is shown ONCE');
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  });
});
