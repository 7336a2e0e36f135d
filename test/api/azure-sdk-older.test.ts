// An older Azure SDK still works: @azure/arm-compute 24.1.0 (installed as the
// alias @azure/arm-compute-24) sends galleries 2025-03-03 and virtual machines
// 2026-03-01, and @azure/arm-resources 8 asked for an older api-version
// (2021-04-01) manages resource groups. The newest releases are tested in
// azure-sdk.test.ts.
import { readFileSync } from 'node:fs';
import { ComputeManagementClient } from '@azure/arm-compute-24';
import { ResourceManagementClient } from '@azure/arm-resources';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../helpers/fake-compute.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('@azure/arm-compute 24.1.0 against labforge', () => {
  let t: TestServer;
  let client: ComputeManagementClient;
  let resources: ResourceManagementClient;
  const poll = { updateIntervalInMs: 20 };
  /** "<resource type>@<api-version>" of every request to an ARM resource */
  const sent = new Set<string>();

  beforeAll(async () => {
    t = await startTestServer('sqlite', { tls: true, env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
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
              const type =
                /\/providers\/Microsoft\.Compute\/(galleries|virtualMachines)/i.exec(u.pathname)?.[1] ??
                (/\/resourcegroups\/[^/]+$/i.test(u.pathname) ? 'resourceGroups' : undefined);
              if (type) sent.add(`${type}@${u.searchParams.get('api-version')}`);
              return next(req as never);
            },
          },
        },
      ],
    };
    client = new ComputeManagementClient(credential, t.sub, options as never);
    resources = new ResourceManagementClient(credential, t.sub, { ...options, apiVersion: '2021-04-01' } as never);
  });
  afterAll(async () => t?.close());

  it('manages a gallery, an image definition and a version, and runs a VM from it', async () => {
    expect((await resources.resourceGroups.createOrUpdate('old-sdk', { location: 'site-a' })).name).toBe('old-sdk');
    const g = await client.galleries.createOrUpdate('old-sdk', 'Archive', { location: 'site-a', description: 'kept for old clients' }, poll);
    expect(g.provisioningState).toBe('Succeeded');
    expect(g.description).toBe('kept for old clients');
    const img = await client.galleryImages.createOrUpdate(
      'old-sdk',
      'Archive',
      'base',
      { location: 'site-a', osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'Contoso', offer: 'Base', sku: '1' } },
      poll,
    );
    expect(img.identifier).toEqual({ publisher: 'Contoso', offer: 'Base', sku: '1' });
    const v = await client.galleryImageVersions.createOrUpdate(
      'old-sdk',
      'Archive',
      'base',
      '1.0.0',
      { location: 'site-a', storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } } } } as never,
      poll,
    );
    expect(v.provisioningState).toBe('Succeeded');
    const names = [];
    for await (const x of client.galleryImageVersions.listByGalleryImage('old-sdk', 'Archive', 'base')) names.push(x.name);
    expect(names).toEqual(['1.0.0']);

    const vm = await client.virtualMachines.createOrUpdate(
      'old-sdk',
      'legacy-1',
      {
        location: 'site-a',
        hardwareProfile: { vmSize: 'Standard_B1s' },
        storageProfile: { imageReference: { id: img.id } },
        osProfile: { adminUsername: 'teacher', adminPassword: 'Classroom-2026' },
      },
      poll,
    );
    expect(vm.storageProfile?.imageReference?.exactVersion).toBe('1.0.0');
    expect((await client.virtualMachines.instanceView('old-sdk', 'legacy-1')).statuses?.[1]?.code).toBe('PowerState/running');
    await client.virtualMachines.delete('old-sdk', 'legacy-1', poll);
    await expect(client.virtualMachines.get('old-sdk', 'legacy-1')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });

    expect([...sent].sort()).toEqual(['galleries@2025-03-03', 'resourceGroups@2021-04-01', 'virtualMachines@2026-03-01']);
  });
});
