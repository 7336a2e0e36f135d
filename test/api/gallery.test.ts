// Rules of galleries, image definitions and versions, through the HTTP API,
// against SQLite and PostgreSQL.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/pg.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const imageBody = (sku: string, extra: Record<string, unknown> = {}) => ({
  location: 'site-a',
  properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'Contoso', offer: 'Labs', sku }, ...extra },
});
const versionBody = (extra: Record<string, unknown> = {}, publishing: Record<string, unknown> = {}) => ({
  location: 'site-a',
  properties: { publishingProfile: publishing, storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=4' } } }, ...extra },
});

describe.each(DIALECTS)('gallery rules (%s)', (dialect) => {
  let t: TestServer;
  let base: string;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    expect((await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/rg?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    base = `/subscriptions/${t.sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries`;
    expect((await t.call('PUT', `${base}/main?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
  });
  afterAll(async () => t?.close());

  const createVersion = async (image: string, name: string, publishing: Record<string, unknown> = {}) => {
    const r = await t.call('PUT', `${base}/main/images/${image}/versions/${name}?${COMPUTE}`, versionBody({}, publishing));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.properties.provisioningState).toBe('Creating');
    const op = await waitForOperation(t, r.headers['azure-asyncoperation'] as string);
    expect(op.status, JSON.stringify(op)).toBe('Succeeded');
    return op;
  };

  it('refuses invalid gallery names and unknown regions with InvalidParameter', async () => {
    const bad = await t.call('PUT', `${base}/bad-name?${COMPUTE}`, { location: 'site-a' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('InvalidParameter');
    expect(bad.body.error.message).toContain('no hyphens');
    const region = await t.call('PUT', `${base}/g2?${COMPUTE}`, { location: 'mars' });
    expect(region.status).toBe(400);
    expect(region.body.error.message).toContain('site-a, site-b');
    const missing = await t.call('PUT', `${base}/g2?${COMPUTE}`, {});
    expect(missing.status).toBe(400);
    expect((await t.call('GET', `${base}/g2?${COMPUTE}`)).status).toBe(404);
  });

  it('accepts Azure-style display names for regions and stores the canonical name', async () => {
    const r = await t.call('PUT', `${base}/DisplayNamed?${COMPUTE}`, { location: 'Site B' });
    expect(r.status).toBe(201);
    expect(r.body.location).toBe('site-b');
  });

  it('requires osType, osState and a full identifier on image definitions', async () => {
    const noOs = await t.call('PUT', `${base}/main/images/x?${COMPUTE}`, {
      location: 'site-a',
      properties: { osState: 'Generalized', identifier: { publisher: 'a', offer: 'b', sku: 'c' } },
    });
    expect(noOs.status).toBe(400);
    expect(noOs.body.error.target).toBe('properties.osType');
    const badState = await t.call('PUT', `${base}/main/images/x?${COMPUTE}`, imageBody('c', { osState: 'Frozen' }));
    expect(badState.body.error.message).toContain('Generalized, Specialized');
    const noSku = await t.call('PUT', `${base}/main/images/x?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'a', offer: 'b' } },
    });
    expect(noSku.status).toBe(400);
    expect(noSku.body.error.target).toBe('properties.identifier.sku');
  });

  it('keeps publisher/offer/sku unique within a gallery', async () => {
    expect((await t.call('PUT', `${base}/main/images/first?${COMPUTE}`, imageBody('unique-1'))).status).toBe(201);
    const clash = await t.call('PUT', `${base}/main/images/second?${COMPUTE}`, imageBody('UNIQUE-1'));
    expect(clash.status).toBe(409);
    expect(clash.body.error.message).toContain("'first'");
    expect((await t.call('GET', `${base}/main/images/second?${COMPUTE}`)).status).toBe(404);
  });

  it('refuses changes to immutable image fields and allows the mutable ones', async () => {
    expect((await t.call('PUT', `${base}/main/images/fixed?${COMPUTE}`, imageBody('fixed', { description: 'v1' }))).status).toBe(201);
    for (const [field, value] of [
      ['osType', 'Windows'],
      ['osState', 'Specialized'],
      ['hyperVGeneration', 'V2'],
    ] as const) {
      const r = await t.call('PATCH', `${base}/main/images/fixed?${COMPUTE}`, { properties: { [field]: value } });
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('PropertyChangeNotAllowed');
      expect(r.body.error.target).toBe(`properties.${field}`);
    }
    const ident = await t.call('PUT', `${base}/main/images/fixed?${COMPUTE}`, imageBody('other'));
    expect(ident.body.error.target).toBe('properties.identifier.sku');
    const ok = await t.call('PATCH', `${base}/main/images/fixed?${COMPUTE}`, {
      properties: { description: 'v2', endOfLifeDate: '2030-01-01T00:00:00Z', recommended: { vCPUs: { min: 2, max: 8 } } },
    });
    expect(ok.status).toBe(200);
    const got = await t.call('GET', `${base}/main/images/fixed?${COMPUTE}`);
    expect(got.body.properties.description).toBe('v2');
    expect(got.body.properties.osType).toBe('Linux');
    expect(got.body.properties.endOfLifeDate).toBe('2030-01-01T00:00:00.000Z');
    expect(got.body.properties.recommended.vCPUs).toEqual({ min: 2, max: 8 });
    const badRange = await t.call('PATCH', `${base}/main/images/fixed?${COMPUTE}`, { properties: { recommended: { vCPUs: { min: 8, max: 2 } } } });
    expect(badRange.status).toBe(400);
  });

  it('validates version names as three 32-bit integers', async () => {
    expect((await t.call('PUT', `${base}/main/images/names?${COMPUTE}`, imageBody('names'))).status).toBe(201);
    for (const name of ['1.0', 'v1.0.0', '1.0.0.0', '1.2147483648.0', 'latest']) {
      const r = await t.call('PUT', `${base}/main/images/names/versions/${name}?${COMPUTE}`, versionBody());
      expect(r.status, name).toBe(400);
      expect(r.body.error.code).toBe('InvalidParameter');
    }
    expect((await t.call('GET', `${base}/main/images/names/versions?${COMPUTE}`)).body.value).toEqual([]);
  });

  it('picks latest by version number, skipping versions excluded from latest', async () => {
    expect((await t.call('PUT', `${base}/main/images/lat?${COMPUTE}`, imageBody('lat'))).status).toBe(201);
    const none = await t.call('GET', `${base}/main/images/lat/versions/latest?${COMPUTE}`);
    expect(none.status).toBe(404);
    await createVersion('lat', '1.9.0');
    await createVersion('lat', '1.10.0');
    await createVersion('lat', '2.0.0', { excludeFromLatest: true });
    await createVersion('lat', '1.2.3');
    const latest = await t.call('GET', `${base}/main/images/lat/versions/latest?${COMPUTE}`);
    expect(latest.body.name).toBe('1.10.0');
    // Un-exclude 2.0.0: it becomes latest.
    const upd = await t.call('PATCH', `${base}/main/images/lat/versions/2.0.0?${COMPUTE}`, { properties: { publishingProfile: { excludeFromLatest: false } } });
    expect(upd.status).toBe(200);
    expect((await t.call('GET', `${base}/main/images/lat/versions/latest?${COMPUTE}`)).body.name).toBe('2.0.0');
    const list = await t.call('GET', `${base}/main/images/lat/versions?${COMPUTE}`);
    expect(list.body.value.map((v: { name: string }) => v.name)).toEqual(['1.2.3', '1.9.0', '1.10.0', '2.0.0']);
  });

  it('replicates to target regions and reports per-region status only with $expand', async () => {
    expect((await t.call('PUT', `${base}/main/images/rep?${COMPUTE}`, imageBody('rep'))).status).toBe(201);
    await createVersion('rep', '1.0.0', {
      targetRegions: [{ name: 'site-a' }, { name: 'site-b', regionalReplicaCount: 3, storageAccountType: 'Premium_LRS' }],
    });
    const plain = await t.call('GET', `${base}/main/images/rep/versions/1.0.0?${COMPUTE}`);
    expect(plain.body.properties.replicationStatus).toBeUndefined();
    const v = await t.call('GET', `${base}/main/images/rep/versions/1.0.0?${COMPUTE}&$expand=ReplicationStatus`);
    expect(v.body.properties.provisioningState).toBe('Succeeded');
    const stored = await t.server.services.versions.get(t.sub, 'rg', 'main', 'rep', '1.0.0');
    for (const region of ['site-a', 'site-b']) {
      const m = await t.server.services.imageStores.get(region)?.getManifest(stored.key);
      expect(m?.disks[0]).toEqual({ name: 'os', virtualSize: 4 * 2 ** 30, blockSize: 2 ** 20, blocks: [] });
    }
    expect(v.body.properties.replicationStatus.aggregatedState).toBe('Completed');
    expect(v.body.properties.publishingProfile.targetRegions).toContainEqual({ name: 'site-b', regionalReplicaCount: 3, storageAccountType: 'Premium_LRS' });
    // Dropping a region is an update that runs as an operation.
    const drop = await t.call('PATCH', `${base}/main/images/rep/versions/1.0.0?${COMPUTE}`, {
      properties: { publishingProfile: { targetRegions: [{ name: 'site-a' }] } },
    });
    expect(drop.status).toBe(200);
    expect((await waitForOperation(t, drop.headers['azure-asyncoperation'] as string)).status).toBe('Succeeded');
    const after = await t.call('GET', `${base}/main/images/rep/versions/1.0.0?${COMPUTE}&$expand=ReplicationStatus`);
    expect(after.body.properties.replicationStatus.summary.map((s: { region: string }) => s.region)).toEqual(['site-a']);
    // The replica in the dropped region is gone; the one in the gallery's region stays.
    const key = (await t.server.services.versions.get(t.sub, 'rg', 'main', 'rep', '1.0.0')).key;
    expect(await t.server.services.imageStores.get('site-a')?.hasManifest(key)).toBe(true);
    expect(await t.server.services.imageStores.get('site-b')?.hasManifest(key)).toBe(false);
    expect((await t.call('DELETE', `${base}/main/images/rep/versions/1.0.0?${COMPUTE}`)).status).toBe(200);
    expect(await t.server.services.imageStores.get('site-a')?.hasManifest(key)).toBe(false);
  });

  it('refuses target lists without the gallery region or with duplicates', async () => {
    expect((await t.call('PUT', `${base}/main/images/geo?${COMPUTE}`, imageBody('geo'))).status).toBe(201);
    const noHome = await t.call('PUT', `${base}/main/images/geo/versions/1.0.0?${COMPUTE}`, versionBody({}, { targetRegions: [{ name: 'site-b' }] }));
    expect(noHome.status).toBe(400);
    expect(noHome.body.error.message).toContain("own region 'site-a'");
    const dup = await t.call(
      'PUT',
      `${base}/main/images/geo/versions/1.0.0?${COMPUTE}`,
      versionBody({}, { targetRegions: [{ name: 'site-a' }, { name: 'Site A' }] }),
    );
    expect(dup.status).toBe(400);
    expect(dup.body.error.message).toContain('twice');
  });

  it('refuses a target region in another geography, naming the allowed ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'labforge-geo-'));
    const file = join(dir, 'labforge.yaml');
    writeFileSync(
      file,
      ['geographies:', '  - name: campus', '    regions: [{ name: north }, { name: south }]', '  - name: partner', '    regions: [{ name: faraway }]'].join(
        '\n',
      ),
    );
    const g = await startTestServer(dialect, { env: { LABFORGE_CONFIG: file } });
    try {
      const b = `/subscriptions/${g.sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/geo`;
      expect((await g.call('PUT', `/subscriptions/${g.sub}/resourcegroups/rg?${RESOURCES}`, { location: 'north' })).status).toBe(201);
      expect((await g.call('PUT', `${b}?${COMPUTE}`, { location: 'north' })).status).toBe(201);
      expect((await g.call('PUT', `${b}/images/i?${COMPUTE}`, { ...imageBody('geo'), location: 'north' })).status).toBe(201);
      const body = { ...versionBody({}, { targetRegions: [{ name: 'north' }, { name: 'faraway' }] }), location: 'north' };
      const r = await g.call('PUT', `${b}/images/i/versions/1.0.0?${COMPUTE}`, body);
      expect(r.status).toBe(400);
      expect(r.body.error.message).toContain("geography 'partner'");
      expect(r.body.error.message).toContain('north, south');
      expect(r.body.error.target).toBe('properties.publishingProfile.targetRegions[1].name');
      const ok = await g.call('PUT', `${b}/images/i/versions/1.0.0?${COMPUTE}`, {
        ...body,
        properties: { ...body.properties, publishingProfile: { targetRegions: [{ name: 'north' }, { name: 'south' }] } },
      });
      expect(ok.status).toBe(201);
      const locs = await g.call('GET', `/subscriptions/${g.sub}/locations?api-version=2022-12-01`);
      expect(locs.body.value.map((l: { name: string; metadata: { geographyGroup: string } }) => `${l.name}:${l.metadata.geographyGroup}`)).toEqual([
        'north:campus',
        'south:campus',
        'faraway:partner',
      ]);
    } finally {
      await g.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses content sources it cannot read yet, and content changes on existing versions', async () => {
    expect((await t.call('PUT', `${base}/main/images/src?${COMPUTE}`, imageBody('src'))).status).toBe(201);
    const vhd = await t.call('PUT', `${base}/main/images/src/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { osDiskImage: { source: { uri: 'https://example.invalid/disk.vhd' } } } },
    });
    expect(vhd.status).toBe(400);
    expect(vhd.body.error.code).toBe('InvalidParameter');
    expect(vhd.body.error.target).toBe('properties.storageProfile.osDiskImage.source.uri');
    const none = await t.call('PUT', `${base}/main/images/src/versions/1.0.0?${COMPUTE}`, { location: 'site-a' });
    expect(none.status).toBe(400);
    await createVersion('src', '1.0.0');
    // A version made from another version copies its disks.
    const srcId = `${base}/main/images/src/versions/1.0.0`;
    const copy = await t.call('PUT', `${base}/main/images/src/versions/1.0.1?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { source: { id: srcId } } },
    });
    expect(copy.status).toBe(201);
    expect(copy.body.properties.storageProfile.osDiskImage.sizeInGB).toBe(4);
    await waitForOperation(t, copy.headers['azure-asyncoperation'] as string);
    const change = await t.call('PUT', `${base}/main/images/src/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { source: { id: srcId } } },
    });
    expect(change.status).toBe(409);
    expect(change.body.error.code).toBe('PropertyChangeNotAllowed');
  });

  it('refuses to delete a gallery with images or an image with versions, naming what is inside', async () => {
    expect((await t.call('PUT', `${base}/del?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
    expect((await t.call('PUT', `${base}/del/images/img?${COMPUTE}`, imageBody('del'))).status).toBe(201);
    const r = await t.call('PUT', `${base}/del/images/img/versions/3.1.4?${COMPUTE}`, versionBody());
    await waitForOperation(t, r.headers['azure-asyncoperation'] as string);
    const g = await t.call('DELETE', `${base}/del?${COMPUTE}`);
    expect(g.status).toBe(409);
    expect(g.body.error.code).toBe('Conflict');
    expect(g.body.error.message).toContain("'img'");
    const i = await t.call('DELETE', `${base}/del/images/img?${COMPUTE}`);
    expect(i.status).toBe(409);
    expect(i.body.error.message).toContain('3.1.4');
    expect((await t.call('DELETE', `${base}/del/images/img/versions/3.1.4?${COMPUTE}`)).status).toBe(200);
    expect((await t.call('DELETE', `${base}/del/images/img?${COMPUTE}`)).status).toBe(200);
    expect((await t.call('DELETE', `${base}/del?${COMPUTE}`)).status).toBe(200);
    expect((await t.call('DELETE', `${base}/del?${COMPUTE}`)).status).toBe(204);
    const rg = await t.call('DELETE', `/subscriptions/${t.sub}/resourcegroups/rg?${RESOURCES}`);
    expect(rg.status).toBe(409);
    expect(rg.body.error.message).toContain("'main'");
  });

  it('treats names case-insensitively, as Azure does', async () => {
    const r = await t.call('GET', `/subscriptions/${t.sub}/resourcegroups/RG/providers/microsoft.compute/galleries/MAIN?${COMPUTE}`);
    expect(r.status).toBe(200);
    expect(r.body.name).toBe('main');
    const dup = await t.call('PUT', `${base}/MAIN?${COMPUTE}`, { location: 'site-a', properties: { description: 'same gallery' } });
    expect(dup.status).toBe(200);
  });
});
