// The real Azure SDK for Lab Services (@azure/arm-labservices 3.1.0, the
// newest release; it sends api-version 2022-08-01 for every call) drives the
// main educator path against a running labforge over HTTPS: lab plan with a
// gallery, image enabled, lab with a template, export, publish, a student and
// their VM. The compute driver runs nothing here; the flow on real VMs is in
// labs-e2e.test.ts.
import { readFileSync } from 'node:fs';
import { LabServicesClient } from '@azure/arm-labservices';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../helpers/fake-compute.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

describe('@azure/arm-labservices against labforge', () => {
  let t: TestServer;
  let client: LabServicesClient;
  let studentClient: LabServicesClient;
  const poll = { updateIntervalInMs: 20 };
  /** the api-versions the SDK sent to Microsoft.LabServices paths */
  const sent = new Set<string>();
  const clientFor = (token: string) =>
    new LabServicesClient({ getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }) }, t.sub, {
      endpoint: t.server.url,
      tlsOptions: { ca: readFileSync(t.server.caFile as string, 'utf8') },
      retryOptions: { maxRetries: 0 },
      additionalPolicies: [
        {
          position: 'perCall',
          policy: {
            name: 'recordApiVersion',
            sendRequest: (req: { url: string }, next: (r: never) => Promise<unknown>) => {
              const u = new URL(req.url);
              if (/\/providers\/Microsoft\.LabServices\//i.test(u.pathname)) sent.add(u.searchParams.get('api-version') ?? '');
              return next(req as never);
            },
          },
        },
      ],
    } as never);

  beforeAll(async () => {
    t = await startTestServer('sqlite', { tls: true, env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    expect((await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/school?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    const gallery = `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.Compute/galleries/dept`;
    await t.call('PUT', `${gallery}?${COMPUTE}`, { location: 'site-a' });
    await t.call('PUT', `${gallery}/images/course?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'school', offer: 'course', sku: '1' } },
    });
    const v = await t.call('PUT', `${gallery}/images/course/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } } } },
    });
    expect((await waitForOperation(t, v.headers['azure-asyncoperation'] as string)).status).toBe('Succeeded');
    client = clientFor(await t.tokenFor('admin', 'it-admin'));
    studentClient = clientFor(await t.tokenFor('user', 'kim@school.edu'));
  });
  afterAll(async () => t?.close());

  it('creates a plan and a lab, exports the template, publishes, and serves a student', async () => {
    const galleryId = `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.Compute/galleries/dept`;
    const plan = await client.labPlans.beginCreateOrUpdateAndWait(
      'school',
      'science',
      { location: 'site-a', sharedGalleryId: galleryId, defaultAutoShutdownProfile: { shutdownOnIdle: 'LowUsage', idleDelay: 'PT15M' } },
      poll,
    );
    expect(plan.sharedGalleryId).toBe(galleryId);
    expect(plan.defaultAutoShutdownProfile?.shutdownOnIdle).toBe('LowUsage');

    const images = [];
    for await (const i of client.images.listByLabPlan('school', 'science')) images.push(i);
    expect(images.map((i) => [i.name, i.enabledState])).toEqual([['course', 'Disabled']]);
    const enabled = await client.images.update('school', 'science', 'course', { enabledState: 'Enabled' });
    expect(enabled.enabledState).toBe('Enabled');
    expect(enabled.osState).toBe('Generalized');

    const lab = await client.labs.beginCreateOrUpdateAndWait(
      'school',
      'physics',
      {
        location: 'site-a',
        labPlanId: plan.id,
        title: 'Physics 101',
        autoShutdownProfile: {},
        connectionProfile: {},
        securityProfile: { openAccess: 'Disabled' },
        virtualMachineProfile: {
          createOption: 'TemplateVM',
          imageReference: { id: enabled.id },
          sku: { name: 'Standard_B1s', capacity: 2 },
          usageQuota: 'PT10H',
          adminUser: { username: 'teacher', password: 'Classroom-2026' },
        },
      },
      poll,
    );
    expect(lab.provisioningState).toBe('Succeeded');
    expect(lab.state).toBe('Draft');
    expect(lab.virtualMachineProfile.imageReference.exactVersion).toBe('1.0.0');
    expect(lab.securityProfile.registrationCode).toMatch(/^[\w-]+$/);

    await client.labPlans.beginSaveImageAndWait('school', 'science', { name: 'physics-101', labVirtualMachineId: `${lab.id}/virtualMachines/template` }, poll);
    const saved = await client.images.get('school', 'science', 'physics-101');
    expect(saved.osState).toBe('Specialized');

    await client.labs.beginPublishAndWait('school', 'physics', poll);
    expect((await client.labs.get('school', 'physics')).state).toBe('Published');
    const vms = [];
    for await (const v of client.virtualMachines.listByLab('school', 'physics')) vms.push(v);
    expect(vms.map((v) => [v.name, v.vmType, v.state])).toEqual([
      ['template', 'Template', 'Running'],
      ['0', 'User', 'Stopped'],
      ['1', 'User', 'Stopped'],
    ]);

    const user = await client.users.beginCreateOrUpdateAndWait('school', 'physics', 'kim', { email: 'kim@school.edu' }, poll);
    expect(user.email).toBe('kim@school.edu');
    const mine = [];
    for await (const v of studentClient.virtualMachines.listByLab('school', 'physics')) mine.push(v);
    expect(mine.map((v) => [v.name, v.claimedByUserId])).toEqual([['0', 'kim@school.edu']]);
    await studentClient.virtualMachines.beginStartAndWait('school', 'physics', '0', poll);
    const started = await studentClient.virtualMachines.get('school', 'physics', '0');
    expect(started.state).toBe('Running');
    expect(started.connectionProfile.sshAuthority).toMatch(/^127\.0\.0\.1:\d+$/);
    await expect(studentClient.virtualMachines.get('school', 'physics', '1')).rejects.toMatchObject({ statusCode: 404 });

    await client.labs.beginDeleteAndWait('school', 'physics', poll);
    await expect(client.labs.get('school', 'physics')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
    expect([...sent]).toEqual(['2022-08-01']);
  });
});
