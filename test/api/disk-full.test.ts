// A full disk is a named error that says where and what to do, and loses
// nothing: an import into a region whose store is full fails with
// InsufficientStorage naming the region, and a metadata write on a full disk
// answers 507 and succeeds once space is back. Real small tmpfs mounts (root).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tusUpload } from '../helpers/images.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const MiB = 1 << 20;
const root = process.getuid?.() === 0;

const mounts: string[] = [];
function tmpfs(sizeMiB: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'labforge-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Writes a file until the disk holding it is full. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(MiB, 7);
  try {
    for (let i = 0; i < 4096; i++) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

afterAll(() => {
  for (const m of mounts) {
    execFileSync('umount', ['-l', m]);
    rmSync(m, { recursive: true, force: true });
  }
});

describe.skipIf(!root)('a full disk (needs root to mount small tmpfs file systems)', () => {
  let t: TestServer | undefined;
  afterAll(async () => {
    await t?.close();
  });

  it('fails an import into a region whose store is full with InsufficientStorage, naming the region and its disk', async () => {
    const small = tmpfs(16);
    const config = join(mkdtempSync(join(tmpdir(), 'labforge-full-cfg-')), 'labforge.yaml');
    writeFileSync(
      config,
      [
        'geographies:',
        '  - name: local',
        '    regions:',
        `      - { name: site-a, imageStore: { driver: local, options: { path: ${join(small, 'site-a')} } } }`,
        `      - { name: site-b, imageStore: { driver: local, options: { path: ${join(mkdtempSync(join(tmpdir(), 'labforge-b-')), 'site-b')} } } }`,
      ].join('\n'),
    );
    t = await startTestServer('sqlite', { env: { LABFORGE_CONFIG: config } });
    const disk = join(mkdtempSync(join(tmpdir(), 'labforge-full-disk-')), 'disk.raw');
    writeFileSync(disk, randomBytes(40 * MiB));
    const uri = await tusUpload(t.server.url, t.adminToken, readFileSync(disk), { chunkSize: 8 * MiB });
    expect((await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/rg?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    const gallery = `/subscriptions/${t.sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g`;
    expect((await t.call('PUT', `${gallery}?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
    const img = { location: 'site-a', properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'p', offer: 'o', sku: 's' } } };
    expect((await t.call('PUT', `${gallery}/images/lab?${COMPUTE}`, img)).status).toBe(201);
    const r = await t.call('PUT', `${gallery}/images/lab/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { osDiskImage: { source: { uri } } } },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const op = await waitForOperation(t, r.headers['azure-asyncoperation'] as string, 60_000);
    expect(op.status).toBe('Failed');
    expect(op.error.code).toBe('InsufficientStorage');
    expect(op.error.message).toMatch(/Region 'site-a' could not store .*: the disk holding .*site-a is full \(.* free of 16\.0 MiB\).*Free space there/);
    const v = await t.call('GET', `${gallery}/images/lab/versions/1.0.0?${COMPUTE}`);
    expect(v.body.properties.provisioningState).toBe('Failed');
    await t.close();
    t = undefined;
  }, 120_000);

  it('answers a metadata write on a full disk with 507 InsufficientStorage, and takes it once there is space again', async () => {
    const small = tmpfs(32);
    const data = join(small, 'data');
    mkdirSync(data);
    t = await startTestServer('sqlite', { dataDir: data });
    const filler = join(small, 'filler');
    fill(filler);
    const full = await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/full?${RESOURCES}`, { location: 'site-a' });
    expect(full.status).toBe(507);
    expect(full.body.error.code).toBe('InsufficientStorage');
    expect(full.body.error.message).toMatch(/The metadata store could not save the change: the disk holding .*labforge\.db is full/);
    rmSync(filler);
    const again = await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/full?${RESOURCES}`, { location: 'site-a' });
    expect(again.status).toBe(201);
    expect((await t.call('GET', `/subscriptions/${t.sub}/resourcegroups/full?${RESOURCES}`)).status).toBe(200);
  }, 120_000);
});
