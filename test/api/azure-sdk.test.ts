// The newest Azure SDKs (@azure/arm-compute 25.1.1, @azure/arm-resources
// 8.0.0), pointed at a running labforge over HTTPS with a token credential,
// manage resource groups, galleries, image definitions, versions and VMs. A
// pipeline policy records the api-version of every request, so the test also
// proves which versions those releases send (docs/API.md lists them).
import { readFileSync } from 'node:fs';
import { ComputeManagementClient } from '@azure/arm-compute';
import { ResourceManagementClient } from '@azure/arm-resources';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../helpers/fake-compute.js';
import { DIALECTS } from '../helpers/pg.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** The ARM resource type a request path addresses, or undefined for labforge's own (operation polling). */
function resourceTypeOf(path: string): string | undefined {
  if (/\/providers\/Labforge\.Core\//i.test(path)) return undefined;
  if (/\/providers\/Microsoft\.Compute\/galleries/i.test(path)) return 'Microsoft.Compute/galleries';
  if (/\/providers\/Microsoft\.Compute\/virtualMachines/i.test(path)) return 'Microsoft.Compute/virtualMachines';
  if (/\/resourcegroups(\/[^/]+)?$/i.test(path)) return 'Microsoft.Resources/resourceGroups';
  return path;
}

describe.each(DIALECTS)('@azure/arm-compute 25 and @azure/arm-resources 8 against labforge (%s)', (dialect) => {
  let t: TestServer;
  let client: ComputeManagementClient;
  let resources: ResourceManagementClient;
  const poll = { updateIntervalInMs: 20 };
  /** resource type → the api-versions the SDKs sent for it */
  const sent = new Map<string, Set<string>>();

  beforeAll(async () => {
    t = await startTestServer(dialect, { tls: true, env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    expect(t.server.url.startsWith('https://')).toBe(true);
    const credential = { getToken: async () => ({ token: t.adminToken, expiresOnTimestamp: Date.now() + 3600_000 }) };
    const options = {
      endpoint: t.server.url,
      tlsOptions: { ca: readFileSync(t.server.caFile as string, 'utf8') },
      retryOptions: { maxRetries: 0 },
      additionalPolicies: [
        {
          position: 'perCall' as const,
          policy: {
            name: 'recordApiVersion',
            sendRequest: (req: { url: string }, next: (r: never) => Promise<unknown>) => {
              const u = new URL(req.url);
              const type = resourceTypeOf(u.pathname);
              const version = u.searchParams.get('api-version');
              if (type && version) sent.set(type, (sent.get(type) ?? new Set()).add(version));
              return next(req as never);
            },
          },
        },
      ],
    };
    client = new ComputeManagementClient(credential, t.sub, options as never);
    resources = new ResourceManagementClient(credential, t.sub, options as never);
    const rg = await resources.resourceGroups.createOrUpdate('sdk-rg', { location: 'site-a' });
    expect(rg.name).toBe('sdk-rg');
  });
  afterAll(async () => t?.close());

  it('creates, reads, tags, lists, checks and deletes a resource group', async () => {
    const g = await resources.resourceGroups.createOrUpdate('sdk-scratch', { location: 'site-a', tags: { term: 'autumn' } });
    expect(g).toMatchObject({ name: 'sdk-scratch', location: 'site-a', tags: { term: 'autumn' }, properties: { provisioningState: 'Succeeded' } });
    expect(g.id).toBe(`/subscriptions/${t.sub}/resourceGroups/sdk-scratch`);
    expect((await resources.resourceGroups.get('SDK-SCRATCH')).name).toBe('sdk-scratch');

    const tagged = await resources.resourceGroups.update('sdk-scratch', { tags: { term: 'spring' } });
    expect(tagged.tags).toEqual({ term: 'spring' });
    expect(tagged.location).toBe('site-a');

    const names = [];
    for await (const x of resources.resourceGroups.list()) names.push(x.name);
    expect(names).toEqual(expect.arrayContaining(['sdk-rg', 'sdk-scratch']));
    expect((await resources.resourceGroups.checkExistence('sdk-scratch')).body).toBe(true);
    expect((await resources.resourceGroups.checkExistence('no-such-group')).body).toBe(false);

    await expect(resources.resourceGroups.createOrUpdate('sdk-scratch', { location: 'site-b' })).rejects.toMatchObject({
      statusCode: 409,
      code: 'InvalidResourceGroupLocation',
    });
    await resources.resourceGroups.delete('sdk-scratch', poll);
    expect((await resources.resourceGroups.checkExistence('sdk-scratch')).body).toBe(false);
    await expect(resources.resourceGroups.get('sdk-scratch')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceGroupNotFound' });
  });

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

  it('refuses to delete a resource group that still holds resources', async () => {
    await expect(resources.resourceGroups.delete('sdk-rg', poll)).rejects.toMatchObject({ statusCode: 409, code: 'Conflict' });
  });

  it('sent the api-versions of these releases (the ones docs/API.md lists)', () => {
    expect(Object.fromEntries([...sent].map(([type, versions]) => [type, [...versions]]))).toEqual({
      'Microsoft.Resources/resourceGroups': ['2025-04-01'],
      'Microsoft.Compute/galleries': ['2025-12-03'],
      'Microsoft.Compute/virtualMachines': ['2026-04-01'],
    });
  });
});
