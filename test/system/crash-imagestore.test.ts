// SIGKILL during an import and during a replication: after a restart the
// operation finishes, the content is right in every region, verify finds
// nothing wrong, and no temporary file is left.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/services/token.service.js';
import { storedChunks, tusUpload } from '../helpers/images.js';
import { serveProcess } from '../helpers/serve-process.js';
import { COMPUTE, LABFORGE, RESOURCES } from '../helpers/server.js';

const MiB = 1 << 20;

const files = (dir: string): string[] =>
  existsSync(dir)
    ? readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name))
    : [];

describe('crash recovery of imports and replication', () => {
  const procs: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const p of procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  for (const point of ['import', 'replication'] as const) {
    it(`finishes a version killed during ${point}`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'labforge-crash-store-'));
      dirs.push(dataDir);
      const token = TokenService.generate().token;
      // Packs of 2 chunks: the kill lands with some packs sealed and one being written.
      const env = {
        LABFORGE_DATA_DIR: dataDir,
        LABFORGE_LISTEN: '127.0.0.1:0',
        LABFORGE_TLS: '0',
        LABFORGE_ADMIN_TOKEN: token,
        LABFORGE_LEASE_SECONDS: '1',
        LABFORGE_PACK_SIZE_MIB: '2',
      };
      const first = await serveProcess({ ...env, LABFORGE_FAULT_INJECTION: 'chunk-delay-ms=60' });
      procs.push(first.child);
      const call = async (url: string, method: string, path: string, body?: unknown) => {
        const r = await fetch(`${url}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        });
        return { status: r.status, headers: r.headers, body: await r.json().catch(() => undefined) };
      };
      const sub = (await call(first.url, 'GET', '/subscriptions?api-version=2022-12-01')).body.value[0].subscriptionId;
      const g = `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g`;
      await call(first.url, 'PUT', `/subscriptions/${sub}/resourcegroups/rg?${RESOURCES}`, { location: 'site-a' });
      await call(first.url, 'PUT', `${g}?${COMPUTE}`, { location: 'site-a' });
      await call(first.url, 'PUT', `${g}/images/i?${COMPUTE}`, {
        location: 'site-a',
        properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'p', offer: 'o', sku: 's' } },
      });
      const disk = Buffer.concat([randomBytes(16 * MiB), Buffer.alloc(4 * MiB), randomBytes(4 * MiB)]);
      const uploadUrl = await tusUpload(first.url, token, disk);
      const created = await call(first.url, 'PUT', `${g}/images/i/versions/1.0.0?${COMPUTE}`, {
        location: 'site-a',
        properties: {
          publishingProfile: { targetRegions: [{ name: 'site-a' }, { name: 'site-b' }] },
          storageProfile: { osDiskImage: { source: { uri: uploadUrl } } },
        },
      });
      expect(created.status).toBe(201);
      const opUrl = new URL(created.headers.get('azure-asyncoperation') as string);
      const opPath = `${opUrl.pathname}${opUrl.search}`;

      // Kill once the chosen phase is under way: chunks arriving in site-a (import) or in site-b (replication).
      const region = point === 'import' ? 'site-a' : 'site-b';
      const stored = async (r: string) => (await storedChunks(join(dataDir, 'regions', r))).size;
      for (let i = 0; i < 400 && (await stored(region)) < 5; i++) await sleep(20);
      expect(await stored(region)).toBeGreaterThanOrEqual(5);
      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
      // Sealed packs only: the pack the kill interrupted is a temporary file, not chunks.
      const sentBefore = await stored('site-b');
      expect(files(join(dataDir, 'regions', 'site-b', 'manifests'))).toEqual([]);

      const second = await serveProcess(env);
      procs.push(second.child);
      let op: any;
      for (let i = 0; i < 400; i++) {
        op = (await call(second.url, 'GET', opPath)).body;
        if (op.status !== 'InProgress') break;
        await sleep(50);
      }
      expect(op.status, second.output()).toBe('Succeeded');
      const v = await call(second.url, 'GET', `${g}/images/i/versions/1.0.0?${COMPUTE}&$expand=ReplicationStatus`);
      const siteB = v.body.properties.replicationStatus.summary.find((s: { region: string }) => s.region === 'site-b');
      expect(siteB.state).toBe('Completed');
      if (point === 'replication') {
        // The restarted replication sent only what had not arrived before the kill.
        expect(siteB.details).toBe(`${20 - sentBefore} of 20 chunks sent (${(20 - sentBefore) * MiB} bytes)`);
      }
      for (const r of ['site-a', 'site-b']) {
        const res = await fetch(`${second.url}${g}/images/i/versions/1.0.0/export?${COMPUTE}&format=raw&region=${r}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), disk)).toBe(0);
      }
      const verify = await call(second.url, 'POST', `/subscriptions/${sub}/providers/Labforge.Core/imageStores/verify?${LABFORGE}`);
      let report: any;
      for (let i = 0; i < 200; i++) {
        report = (await call(second.url, 'GET', new URL(verify.headers.get('azure-asyncoperation') as string).pathname + `?${LABFORGE}`)).body;
        if (report.status !== 'InProgress') break;
        await sleep(50);
      }
      expect(report.status).toBe('Succeeded');
      for (const r of report.properties.result) expect([r.corrupt, r.missing]).toEqual([[], []]);
      expect(files(dataDir).filter((f) => f.includes('.tmp-') || f.startsWith(join(dataDir, 'tmp')))).toEqual([]);
      expect(files(join(dataDir, 'uploads'))).toEqual([]);
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    });
  }
});
