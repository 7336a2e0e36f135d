// `labforge store verify|gc|usage` as an admin meets them: tables, JSON,
// exit codes, and a repair reported after damage.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { corruptChunk, tusUpload } from '../helpers/images.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const MiB = 1 << 20;

describe('labforge store', () => {
  let t: TestServer;
  let home: string;
  const cli = (args: string[], configDir: string) => runCli(args, { env: { LABFORGE_CONFIG_DIR: configDir } });
  const login = async (token: string) => {
    const dir = mkdtempSync(join(home, 'cfg-'));
    const r = await cli(['login', '--server', t.server.url, '--token', token, '--ca-file', t.server.caFile as string], dir);
    expect(r.code, r.stderr).toBe(0);
    return dir;
  };

  beforeAll(async () => {
    ensureBuilt();
    home = mkdtempSync(join(tmpdir(), 'labforge-cli-store-'));
    t = await startTestServer('sqlite', { tls: true });
    await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/rg?${RESOURCES}`, { location: 'site-a' });
    const base = `/subscriptions/${t.sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/science`;
    await t.call('PUT', `${base}?${COMPUTE}`, { location: 'site-a' });
    await t.call('PUT', `${base}/images/chem?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'p', offer: 'o', sku: 's' } },
    });
    const url = await tusUpload(t.server.url, t.adminToken, randomBytes(3 * MiB), { ca: readFileSync(t.server.caFile as string) });
    const r = await t.call('PUT', `${base}/images/chem/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { publishingProfile: { targetRegions: [{ name: 'site-a' }, { name: 'site-b' }] }, storageProfile: { osDiskImage: { source: { uri: url } } } },
    });
    expect((await waitForOperation(t, r.headers['azure-asyncoperation'] as string, 30_000)).status).toBe('Succeeded');
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('shows usage per version and per gallery, verifies, repairs and collects', async () => {
    const admin = await login(t.adminToken);
    const usage = await cli(['store', 'usage'], admin);
    expect(usage.code, usage.stderr).toBe(0);
    expect(usage.stdout).toMatch(/site-b\s+science\s+chem\s+1\.0\.0/);
    expect(usage.stdout).toMatch(/REGION\s+GALLERY\s+VERSIONS/);
    const json = JSON.parse((await cli(['store', 'usage', '--region', 'site-a', '-o', 'json'], admin)).stdout);
    expect(json.versions).toHaveLength(1);
    expect(json.versions[0]).toMatchObject({ gallery: 'science', storedBytes: 3 * MiB });

    const key = (await t.server.services.versions.get(t.sub, 'rg', 'science', 'chem', '1.0.0')).key;
    const m = await t.server.services.imageStores.get('site-a')?.getManifest(key);
    const victim = m?.disks[0]?.blocks[0] as string;
    await corruptChunk(join(t.dataDir, 'regions', 'site-a'), victim);
    const verify = await cli(['store', 'verify', '--region', 'site-a'], admin);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/site-a\s+3\s+\S+ GiB\s+1\s+0\s+1\s+0/);
    expect(verify.stdout).toContain('sound');

    // A torn pack file in site-b: its index is gone, so the whole file is set aside and its chunks repaired.
    const packsB = join(t.dataDir, 'regions', 'site-b', 'packs');
    const [packB] = readdirSync(packsB);
    truncateSync(join(packsB, packB as string), statSync(join(packsB, packB as string)).size - 4096);
    const torn = await cli(['store', 'verify', '--region', 'site-b'], admin);
    expect(torn.code, torn.stderr).toBe(0);
    expect(torn.stdout).toMatch(
      /1 pack file\(s\) had a damaged index and were moved to quarantine\/; their chunks were repaired like missing ones:\n {2}site-b: packs\/[0-9a-f]{24}\.pack/,
    );
    expect(torn.stdout).toMatch(/site-b\s+0\s+\S+ GiB\s+0\s+3\s+3\s+0/);

    const gc = await cli(['store', 'gc', '-o', 'json'], admin);
    expect(gc.code, gc.stderr).toBe(0);
    expect(JSON.parse(gc.stdout).map((r: { chunksKept: number }) => r.chunksKept)).toEqual([3, 3]);

    const creator = await login(await t.tokenFor('creator'));
    const refused = await cli(['store', 'verify'], creator);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/role 'creator'/);
  }, 60_000);
});
