// End to end: upload disks, create versions from them, replicate to a second
// region, read the content back; refuse a hostile disk without keeping any of it.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAllDisk, storedChunks, tusUpload } from '../helpers/images.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const MiB = 1 << 20;

const upload = (t: TestServer, file: string) => tusUpload(t.server.url, t.adminToken, readFileSync(file), { chunkSize: 8 * MiB });

const allFiles = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));

describe('import and replication of uploaded disks', () => {
  let t: TestServer;
  let work: string;
  let base: string;
  const raw = Buffer.concat([randomBytes(5 * MiB), Buffer.alloc(10 * MiB), randomBytes(3 * MiB), Buffer.alloc(6 * MiB)]);

  beforeAll(async () => {
    t = await startTestServer('sqlite');
    work = mkdtempSync(join(tmpdir(), 'labforge-import-'));
    writeFileSync(join(work, 'disk.raw'), raw);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size', join(work, 'disk.raw'), join(work, 'disk.vhd')]);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', join(work, 'disk.raw'), join(work, 'disk.qcow2')]);
    expect((await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/rg?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    base = `/subscriptions/${t.sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g`;
    expect((await t.call('PUT', `${base}?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
    const img = { location: 'site-a', properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'p', offer: 'o', sku: 's' } } };
    expect((await t.call('PUT', `${base}/images/lab?${COMPUTE}`, img)).status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const createVersion = async (name: string, uri: string) => {
    const r = await t.call('PUT', `${base}/images/lab/versions/${name}?${COMPUTE}`, {
      location: 'site-a',
      properties: {
        publishingProfile: { targetRegions: [{ name: 'site-a' }, { name: 'site-b' }] },
        storageProfile: { osDiskImage: { source: { uri } } },
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return waitForOperation(t, r.headers['azure-asyncoperation'] as string, 60_000);
  };
  const contentIn = async (region: string, versionName: string) => {
    const v = await t.server.services.versions.get(t.sub, 'rg', 'g', 'lab', versionName);
    const store = t.server.services.imageStores.get(region)!;
    const m = await store.getManifest(v.key);
    return readAllDisk(store, m!.disks[0]!);
  };
  const chunkCount = async (region: string) => (await storedChunks(join(t.dataDir, 'regions', region))).size;

  it('imports a fixed VHD, replicates it, and both regions hold the original content', async () => {
    const op = await createVersion('1.0.0', await upload(t, join(work, 'disk.vhd')));
    expect(op.status, JSON.stringify(op.error)).toBe('Succeeded');
    for (const region of ['site-a', 'site-b']) expect(Buffer.compare(await contentIn(region, '1.0.0'), raw)).toBe(0);
    // 8 MiB of data in 1 MiB chunks; the 16 MiB of zeros are not stored.
    expect(await chunkCount('site-a')).toBe(8);
    expect(await chunkCount('site-b')).toBe(8);
    const v = await t.call('GET', `${base}/images/lab/versions/1.0.0?${COMPUTE}&$expand=ReplicationStatus`);
    expect(v.body.properties.storageProfile.osDiskImage.sizeInGB).toBe(1);
    expect(v.body.properties.replicationStatus.aggregatedState).toBe('Completed');
    // The upload was consumed.
    expect(readdirSync(join(t.dataDir, 'uploads'))).toEqual([]);
  });

  it('downloads a version as raw, fixed VHD and qcow2 with the original content', async () => {
    const download = async (format: string, region = 'site-b') => {
      const r = await t.server.app.inject({
        method: 'GET',
        url: `${base}/images/lab/versions/1.0.0/export?${COMPUTE}&format=${format}&region=${region}`,
        headers: { authorization: `Bearer ${t.adminToken}` },
      });
      expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
      expect(Number(r.headers['content-length'])).toBe(r.rawPayload.length);
      return r.rawPayload;
    };
    expect(Buffer.compare(await download('raw'), raw)).toBe(0);
    const vhd = await download('vhd');
    expect(vhd.length).toBe(raw.length + 512);
    writeFileSync(join(work, 'out.vhd'), vhd);
    execFileSync('qemu-img', ['compare', '-f', 'vpc', '-F', 'raw', join(work, 'out.vhd'), join(work, 'disk.raw')]);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-f', 'vpc', '--output=json', join(work, 'out.vhd')]).toString());
    expect(info['virtual-size']).toBe(raw.length);
    writeFileSync(join(work, 'out.qcow2'), await download('qcow2', 'site-a'));
    execFileSync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', join(work, 'out.qcow2'), join(work, 'disk.raw')]);
    const bad = await t.call('GET', `${base}/images/lab/versions/1.0.0/export?${COMPUTE}&format=iso`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('raw, vhd, qcow2');
  });

  it('imports a qcow2 whose content differs in 2 MiB and replicates only the new chunks', async () => {
    const changed = Buffer.from(raw);
    randomBytes(2 * MiB).copy(changed, 1 * MiB);
    writeFileSync(join(work, 'v2.raw'), changed);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', join(work, 'v2.raw'), join(work, 'v2.qcow2')]);
    const op = await createVersion('1.1.0', await upload(t, join(work, 'v2.qcow2')));
    expect(op.status, JSON.stringify(op.error)).toBe('Succeeded');
    expect(await chunkCount('site-a')).toBe(10);
    expect(await chunkCount('site-b')).toBe(10);
    expect(Buffer.compare(await contentIn('site-b', '1.1.0'), changed)).toBe(0);
    // No temporary conversion file is left.
    expect(allFiles(t.dataDir).filter((f) => f.includes(`${join(t.dataDir, 'tmp')}`) || f.includes('.tmp-'))).toEqual([]);
  });

  it('refuses a qcow2 that points at a host file, and keeps nothing of it', async () => {
    const canary = join(work, 'canary.txt');
    const marker = `CANARY-${randomBytes(8).toString('hex')}`;
    writeFileSync(canary, marker.repeat(1000));
    execFileSync('qemu-img', ['create', '-f', 'qcow2', '-F', 'raw', '-b', canary, join(work, 'evil.qcow2')]);
    const op = await createVersion('2.0.0', await upload(t, join(work, 'evil.qcow2')));
    expect(op.status).toBe('Failed');
    expect(op.error.code).toBe('DiskHasBackingFile');
    const v = await t.call('GET', `${base}/images/lab/versions/2.0.0?${COMPUTE}`);
    expect(v.body.properties.provisioningState).toBe('Failed');
    expect(readdirSync(join(t.dataDir, 'uploads'))).toEqual([]);
    for (const f of allFiles(t.dataDir)) expect(readFileSync(f).includes(marker), f).toBe(false);
    expect(await chunkCount('site-a')).toBe(10);
  });
  it('imports a compressed qcow2 that expands a hundredfold without a temporary copy of the disk', async () => {
    // 256 MiB of guest data in a file of about 640 KiB: converting it to a temporary raw file would need 256 MiB.
    const bomb = join(work, 'bomb.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', bomb, '256M']);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -c -P 0x5a 0 256M', bomb]);
    expect(statSync(bomb).size).toBeLessThan(2 * MiB);
    const uri = await upload(t, bomb);
    const allocated = () => allFiles(t.dataDir).reduce((n, f) => n + statSync(f).blocks * 512, 0);
    const before = allocated();
    let most = before;
    const watch = setInterval(() => {
      most = Math.max(most, allocated());
    }, 20);
    const op = await createVersion('3.0.0', uri).finally(() => clearInterval(watch));
    expect(op.status, JSON.stringify(op.error)).toBe('Succeeded');
    // What the import needed beyond the upload: its one distinct chunk and bookkeeping, never the disk's size.
    expect(most - before).toBeLessThan(32 * MiB);
    const v = await t.server.services.versions.get(t.sub, 'rg', 'g', 'lab', '3.0.0');
    const disk = (await t.server.services.imageStores.get('site-a')?.getManifest(v.key))?.disks[0];
    expect(disk?.virtualSize).toBe(256 * MiB);
    const pattern = createHash('sha256').update(Buffer.alloc(MiB, 0x5a)).digest('hex');
    expect(new Set(disk?.blocks)).toEqual(new Set([pattern]));
  }, 120_000);
});
