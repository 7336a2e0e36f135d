// The real Azure SDK (@azure/arm-compute), pointed at a running labforge over
// HTTPS with a token credential, manages galleries and image definitions.
import { readFileSync } from 'node:fs';
import { ComputeManagementClient } from '@azure/arm-compute';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import './helpers/fake-compute.js';
import { DIALECTS } from './helpers/pg.js';
import { RESOURCES, startTestServer, type TestServer } from './helpers/server.js';

describe.each(DIALECTS)('@azure/arm-compute against labforge (%s)', (dialect) => {
  let t: TestServer;
  let client: ComputeManagementClient;
  const poll = { updateIntervalInMs: 20 };

  beforeAll(async () => {
    t = await startTestServer(dialect, { tls: true, env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    expect(t.server.url.startsWith('https://')).toBe(true);
    const credential = { getToken: async () => ({ token: t.adminToken, expiresOnTimestamp: Date.now() + 3600_000 }) };
    client = new ComputeManagementClient(credential, t.sub, {
      endpoint: t.server.url,
      tlsOptions: { ca: readFileSync(t.server.caFile as string, 'utf8') },
      retryOptions: { maxRetries: 0 },
    });
    const rg = await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/sdk-rg?${RESOURCES}`, { location: 'site-a' });
    expect(rg.status).toBe(201);
  });
  afterAll(async () => t?.close());

  it('creates, reads, lists, tags and deletes a gallery and an image definition', async () => {
    const g = await client.galleries.createOrUpdate('sdk-rg', 'SchoolGallery', { location: 'site-a', description: 'Images for the science labs' }, poll);
    expect(g.name).toBe('SchoolGallery');
    expect(g.provisioningState).toBe('Succeeded');
    expect(g.description).toBe('Images for the science labs');
    expect(g.identifier?.uniqueName).toMatch(/-SCHOOLGALLERY$/);

    const img = await client.galleryImages.createOrUpdate(
      'sdk-rg',
      'SchoolGallery',
      'ubuntu-lab',
      {
        location: 'site-a',
        osType: 'Linux',
        osState: 'Generalized',
        hyperVGeneration: 'V2',
        identifier: { publisher: 'Contoso', offer: 'Labs', sku: 'ubuntu-22' },
        recommended: { vCPUs: { min: 1, max: 4 }, memory: { min: 1024, max: 8192 } },
      },
      poll,
    );
    expect(img.osState).toBe('Generalized');
    expect(img.identifier).toEqual({ publisher: 'Contoso', offer: 'Labs', sku: 'ubuntu-22' });
    expect(img.hyperVGeneration).toBe('V2');

    const got = await client.galleryImages.get('sdk-rg', 'SchoolGallery', 'ubuntu-lab');
    expect(got.recommended?.vCPUs?.max).toBe(4);

    const galleries = [];
    for await (const x of client.galleries.listByResourceGroup('sdk-rg')) galleries.push(x.name);
    expect(galleries).toEqual(['SchoolGallery']);
    const inSub = [];
    for await (const x of client.galleries.list()) inSub.push(x.name);
    expect(inSub).toContain('SchoolGallery');
    const images = [];
    for await (const x of client.galleryImages.listByGallery('sdk-rg', 'SchoolGallery')) images.push(x.name);
    expect(images).toEqual(['ubuntu-lab']);

    const tagged = await client.galleries.update('sdk-rg', 'SchoolGallery', { tags: { course: 'biology' } }, poll);
    expect(tagged.tags).toEqual({ course: 'biology' });
    expect(tagged.description).toBe('Images for the science labs');
    expect((await client.galleries.get('sdk-rg', 'SchoolGallery')).tags).toEqual({ course: 'biology' });

    const imgTagged = await client.galleryImages.update('sdk-rg', 'SchoolGallery', 'ubuntu-lab', { tags: { term: 'spring' } } as never, poll);
    expect(imgTagged.tags).toEqual({ term: 'spring' });

    await client.galleryImages.delete('sdk-rg', 'SchoolGallery', 'ubuntu-lab', poll);
    await client.galleries.delete('sdk-rg', 'SchoolGallery', poll);
    const after = [];
    for await (const x of client.galleries.listByResourceGroup('sdk-rg')) after.push(x.name);
    expect(after).toEqual([]);
  });

  it("sees Azure's error codes for missing resources and refused changes", async () => {
    await expect(client.galleries.get('sdk-rg', 'NoSuchGallery')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
    await expect(client.galleries.get('no-such-rg', 'NoSuchGallery')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceGroupNotFound' });
    await expect(client.galleryImages.get('sdk-rg', 'NoSuchGallery', 'x')).rejects.toMatchObject({ statusCode: 404, code: 'ParentResourceNotFound' });

    await client.galleries.createOrUpdate('sdk-rg', 'G2', { location: 'site-a' }, poll);
    await client.galleryImages.createOrUpdate(
      'sdk-rg',
      'G2',
      'win',
      { location: 'site-a', osType: 'Windows', osState: 'Specialized', identifier: { publisher: 'Contoso', offer: 'Win', sku: '2022' } },
      poll,
    );
    await expect(
      client.galleryImages.createOrUpdate(
        'sdk-rg',
        'G2',
        'win',
        { location: 'site-a', osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'Contoso', offer: 'Win', sku: '2022' } },
        poll,
      ),
    ).rejects.toMatchObject({ statusCode: 409, code: 'PropertyChangeNotAllowed' });
    await expect(client.galleries.delete('sdk-rg', 'G2', poll)).rejects.toMatchObject({ statusCode: 409, code: 'Conflict' });
  });

  it('creates an image version as a long-running operation and reads latest', async () => {
    await client.galleries.createOrUpdate('sdk-rg', 'G3', { location: 'site-a' }, poll);
    await client.galleryImages.createOrUpdate(
      'sdk-rg',
      'G3',
      'blank',
      { location: 'site-a', osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'Contoso', offer: 'Blank', sku: 'disk' } },
      poll,
    );
    const v = await client.galleryImageVersions.createOrUpdate(
      'sdk-rg',
      'G3',
      'blank',
      '1.0.0',
      {
        location: 'site-a',
        publishingProfile: { targetRegions: [{ name: 'site-a' }, { name: 'site-b', regionalReplicaCount: 2 }] },
        storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=8' } } },
      } as never,
      poll,
    );
    expect(v.provisioningState).toBe('Succeeded');
    const latest = await client.galleryImageVersions.get('sdk-rg', 'G3', 'blank', 'latest', { expand: 'ReplicationStatus' });
    expect(latest.name).toBe('1.0.0');
    expect(latest.replicationStatus?.aggregatedState).toBe('Completed');
    expect(latest.replicationStatus?.summary?.map((s) => s.region).sort()).toEqual(['site-a', 'site-b']);
  });

  it('creates a VM from the gallery version, stops, starts and deletes it', async () => {
    const imageId = `/subscriptions/${t.sub}/resourceGroups/sdk-rg/providers/Microsoft.Compute/galleries/G3/images/blank`;
    const vm = await client.virtualMachines.createOrUpdate(
      'sdk-rg',
      'pupil-1',
      {
        location: 'site-a',
        hardwareProfile: { vmSize: 'Standard_B1s' },
        storageProfile: { imageReference: { id: imageId } },
        osProfile: { computerName: 'pupil-1', adminUsername: 'teacher', adminPassword: 'Classroom-2026' },
      },
      poll,
    );
    expect(vm.provisioningState).toBe('Succeeded');
    expect(vm.storageProfile?.imageReference?.exactVersion).toBe('1.0.0');
    expect(vm.hardwareProfile?.vmSize).toBe('Standard_B1s');
    const view = await client.virtualMachines.instanceView('sdk-rg', 'pupil-1');
    expect(view.statuses?.map((x) => x.code)).toEqual(['ProvisioningState/succeeded', 'PowerState/running']);
    await client.virtualMachines.powerOff('sdk-rg', 'pupil-1', poll);
    expect((await client.virtualMachines.instanceView('sdk-rg', 'pupil-1')).statuses?.[1]?.code).toBe('PowerState/stopped');
    await client.virtualMachines.start('sdk-rg', 'pupil-1', poll);
    const names = [];
    for await (const x of client.virtualMachines.list('sdk-rg')) names.push(x.name);
    expect(names).toEqual(['pupil-1']);
    await client.virtualMachines.delete('sdk-rg', 'pupil-1', poll);
    await expect(client.virtualMachines.get('sdk-rg', 'pupil-1')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
  });
});
