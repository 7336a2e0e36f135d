// Verify and repair, usage and cost, and garbage collection of the regional
// image stores, through the API.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corruptChunk, removeChunk, storedChunks, tusUpload } from '../helpers/images.js';
import { COMPUTE, LABFORGE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const MiB = 1 << 20;

describe('image store maintenance', () => {
  let t: TestServer;
  let cfgDir: string;
  let base: string;
  let versionKey: string;
  const disk = Buffer.concat([randomBytes(6 * MiB), Buffer.alloc(2 * MiB)]);
  const regionDir = (region: string) => join(t.dataDir, 'regions', region);
  const chunks = async (region: string) => [...(await storedChunks(regionDir(region))).keys()];
  const start = async (action: string, region?: string) => {
    const r = await t.call('POST', `/subscriptions/${t.sub}/providers/Labforge.Core/imageStores/${action}?${LABFORGE}${region ? `&region=${region}` : ''}`);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitForOperation(t, r.headers['azure-asyncoperation'] as string, 30_000);
  };

  beforeAll(async () => {
    cfgDir = mkdtempSync(join(tmpdir(), 'labforge-cfg-'));
    writeFileSync(join(cfgDir, 'labforge.yaml'), 'images:\n  gcGraceSeconds: 0\n  pricePerGiBMonth: 0.1\n');
    t = await startTestServer('sqlite', { env: { LABFORGE_CONFIG: join(cfgDir, 'labforge.yaml') } });
    expect((await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/rg?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    base = `/subscriptions/${t.sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g`;
    await t.call('PUT', `${base}?${COMPUTE}`, { location: 'site-a' });
    await t.call('PUT', `${base}/images/i?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'p', offer: 'o', sku: 's' } },
    });
    const url = await tusUpload(t.server.url, t.adminToken, disk);
    const r = await t.call('PUT', `${base}/images/i/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: {
        publishingProfile: { targetRegions: [{ name: 'site-a' }, { name: 'site-b', regionalReplicaCount: 2 }] },
        storageProfile: { osDiskImage: { source: { uri: url } } },
      },
    });
    expect((await waitForOperation(t, r.headers['azure-asyncoperation'] as string, 30_000)).status).toBe('Succeeded');
    versionKey = (await t.server.services.versions.get(t.sub, 'rg', 'g', 'i', '1.0.0')).key;
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    rmSync(cfgDir, { recursive: true, force: true });
  });

  it('finds a corrupt and a missing chunk, quarantines the corrupt one and repairs both from the other region', async () => {
    const m = await t.server.services.imageStores.get('site-a')?.getManifest(versionKey);
    const [first, second] = m!.disks[0]!.blocks as string[];
    await removeChunk(regionDir('site-a'), second as string);
    await corruptChunk(regionDir('site-a'), first as string);
    const op = await start('verify', 'site-a');
    expect(op.status).toBe('Succeeded');
    const [report] = op.properties.result;
    expect(report).toMatchObject({ region: 'site-a', corrupt: [first], missing: [second], unrepairable: [] });
    expect(report.repaired.sort()).toEqual([first, second].sort());
    expect(report.chunksChecked).toBe(5);
    expect(existsSync(join(t.dataDir, 'regions', 'site-a', 'quarantine', `${first}.bad`))).toBe(true);
    const again = await start('verify');
    expect(again.properties.result.map((r: { corrupt: string[]; missing: string[] }) => r.corrupt.length + r.missing.length)).toEqual([0, 0]);
    expect(again.properties.statusMessage).toContain('sound');
  });

  it('fails when no region can repair a chunk, says which, and marks the versions using it unusable', async () => {
    const m = await t.server.services.imageStores.get('site-a')?.getManifest(versionKey);
    const victim = m!.disks[0]!.blocks[3] as string;
    for (const region of ['site-a', 'site-b']) await corruptChunk(regionDir(region), victim);
    const op = await start('verify');
    expect(op.status).toBe('Failed');
    expect(op.error.code).toBe('StoreDamaged');
    expect(op.error.message).toMatch(/1 chunk\(s\) are damaged in every region.*Marked unusable: i 1\.0\.0 in site-a, i 1\.0\.0 in site-b/);
    expect(op.properties.result[0].unrepairable).toEqual([victim]);
    expect(op.properties.result[0].damagedManifests).toEqual([versionKey]);
    // No VM is made from it: each damaged replica says why.
    const v = await t.call('GET', `${base}/images/i/versions/1.0.0?${COMPUTE}&$expand=ReplicationStatus`);
    for (const r of v.body.properties.replicationStatus.summary) {
      expect(r.state).toBe('Failed');
      expect(r.details).toMatch(/Damaged: 1 chunk\(s\) of this region's copy could not be repaired/);
    }
    // Put the right bytes back for the next tests.
    const good = disk.subarray(3 * MiB, 4 * MiB);
    for (const region of ['site-a', 'site-b']) await t.server.services.imageStores.get(region)?.putVerified(victim, good);
  });

  it('reports stored and unique bytes and the monthly cost with replica counts', async () => {
    const r = await t.call('GET', `/subscriptions/${t.sub}/providers/Labforge.Core/imageStores/usage?${LABFORGE}`);
    expect(r.status).toBe(200);
    const row = (region: string) => r.body.versions.find((v: { region: string; version: string }) => v.region === region && v.version === '1.0.0');
    expect(row('site-a')).toMatchObject({ gallery: 'g', image: 'i', logicalBytes: 8 * MiB, storedBytes: 6 * MiB, uniqueBytes: 6 * MiB, replicas: 1 });
    expect(row('site-b')).toMatchObject({ storedBytes: 6 * MiB, replicas: 2 });
    expect(row('site-b').monthlyCost).toBeCloseTo((6 / 1024) * 2 * 0.1, 4);
    expect(r.body.regions.find((x: { region: string }) => x.region === 'site-a').totalStoredBytes).toBe(6 * MiB);
    const creator = await t.tokenFor('creator');
    expect((await t.call('GET', `/subscriptions/${t.sub}/providers/Labforge.Core/imageStores/usage?${LABFORGE}`, undefined, { token: creator })).status).toBe(
      403,
    );
  });

  it('frees the chunks of a deleted version at garbage collection', async () => {
    expect(await chunks('site-a')).toHaveLength(6);
    expect((await t.call('DELETE', `${base}/images/i/versions/1.0.0?${COMPUTE}`)).status).toBe(200);
    const op = await start('gc');
    expect(op.status).toBe('Succeeded');
    expect(op.properties.result.map((r: { chunksRemoved: number; bytesFreed: number }) => [r.chunksRemoved, r.bytesFreed])).toEqual([
      [6, 6 * MiB],
      [6, 6 * MiB],
    ]);
    expect(await chunks('site-a')).toHaveLength(0);
    expect(await chunks('site-b')).toHaveLength(0);
  });
});
