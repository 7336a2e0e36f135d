// Publishing and scaling a lab, with the server killed (SIGKILL) at random
// moments, several times in a row: each resumed operation converges, so every
// seat ends usable (created and stopped), the lab holds exactly its capacity,
// and no disk folder or driver entry is left without its VM.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/services/token.service.js';
import { publishedLab } from '../helpers/labs.js';
import { createPgDatabase, DIALECTS } from '../helpers/pg.js';
import { serveProcess } from '../helpers/serve-process.js';
import type { TestServer } from '../helpers/server.js';

const LS = 'api-version=2022-08-01';

describe.each(DIALECTS)('publish and scale killed mid-way (%s)', (dialect) => {
  const procs: ChildProcess[] = [];
  const dirs: string[] = [];
  let dropDb: (() => Promise<void>) | undefined;
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await dropDb?.();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('converges after each kill: every seat created and stopped, no orphan disk or driver entry', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'labforge-crash-publish-'));
    dirs.push(dataDir);
    const token = TokenService.generate().token;
    let dbEnv: Record<string, string> = {};
    if (dialect === 'postgres') {
      const pg = await createPgDatabase();
      dbEnv = { LABFORGE_DATABASE_URL: pg.url };
      dropDb = pg.drop;
    }
    const env = {
      LABFORGE_DATA_DIR: dataDir,
      LABFORGE_LISTEN: '127.0.0.1:0',
      LABFORGE_TLS: '0',
      LABFORGE_ADMIN_TOKEN: token,
      LABFORGE_LEASE_SECONDS: '2',
      LABFORGE_ACCEL: 'tcg',
      ...dbEnv,
    };
    let server = await serveProcess(env);
    procs.push(server.child);
    // The same calls the in-process helpers make, over HTTP to the server process.
    const t = {
      sub: '',
      call: async (method: string, path: string, body?: unknown) => {
        const r = await fetch(`${server.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: r.status, headers: Object.fromEntries(r.headers.entries()), body: (await r.json().catch(() => undefined)) as any };
      },
    };
    t.sub = (await t.call('GET', '/subscriptions?api-version=2022-12-01')).body.value[0].subscriptionId;
    const { lab } = await publishedLab(t as unknown as TestServer, { plan: 'plan' });

    const kill = async (after: number) => {
      await sleep(after);
      server.child.kill('SIGKILL');
      await new Promise((r) => server.child.once('exit', r));
      server = await serveProcess(env);
      procs.push(server.child);
    };
    const settled = async () => {
      for (let i = 0; i < 600; i++) {
        const l = (await t.call('GET', `${lab}?${LS}`)).body;
        if (l.properties.state === 'Published') return l;
        await sleep(100);
      }
      throw new Error(`lab did not settle:\n${server.output()}`);
    };
    const converged = async (capacity: number) => {
      await settled();
      const vms = (await t.call('GET', `${lab}/virtualMachines?${LS}`)).body.value as any[];
      const seats = vms.filter((v) => v.properties.vmType === 'User');
      expect(seats.map((v) => v.name).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: capacity }, (_, i) => String(i)));
      for (const v of seats) expect([v.name, v.properties.provisioningState, v.properties.state]).toEqual([v.name, 'Succeeded', 'Stopped']);
      // One disk folder and one driver entry per seat: nothing left of VMs that were dropped or re-made.
      const folders = (d: string) => (existsSync(d) ? readdirSync(d) : []);
      expect(folders(join(dataDir, 'compute', 'disks'))).toHaveLength(capacity);
      expect(folders(join(dataDir, 'compute', 'vms')).filter((n) => !n.startsWith('.'))).toHaveLength(capacity);
    };

    // Rounds of change, each killed at a random moment (bounded: three rounds, one kill each).
    let capacity: number;
    for (const next of [36, 60, 24]) {
      const r = await t.call('PATCH', `${lab}?${LS}`, { properties: { virtualMachineProfile: { sku: { capacity: next } } } });
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
      await kill(50 + Math.floor(Math.random() * 700));
      capacity = next;
      await converged(capacity);
      // Publishing again (a new snapshot, every seat re-made), killed too.
      expect((await t.call('POST', `${lab}/publish?${LS}`)).status).toBe(202);
      await kill(50 + Math.floor(Math.random() * 700));
      await converged(capacity);
    }
    server.child.kill('SIGTERM');
  }, 300_000);
});
