// Lab Services on both metadata stores, with a compute driver that runs
// nothing (the disks, captures and snapshots are real): lab plans with an
// attached gallery, the images they offer and hide, labs with templates,
// export to the gallery, publish and scale, students and roles.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeDriver } from '../helpers/fake-compute.js';
import { DIALECTS } from '../helpers/pg.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const LS = 'api-version=2022-08-01';

describe.each(DIALECTS)('Lab Services (%s)', (dialect) => {
  let t: TestServer;
  let rg: string;
  let gallery: string;
  let plan: string;
  let creatorA: string;
  let creatorB: string;
  let student: string;
  const labUrl = (lab: string, rest = '') => `${rg}/providers/Microsoft.LabServices/labs/${lab}${rest}?${LS}`;
  const op = async (r: { headers: Record<string, unknown>; body: unknown; status: number }) => {
    expect(r.headers['azure-asyncoperation'], JSON.stringify(r.body)).toBeDefined();
    const done = await waitForOperation(t, r.headers['azure-asyncoperation'] as string, 30_000);
    expect(done.status, JSON.stringify(done)).toBe('Succeeded');
    return done;
  };
  async function imageDef(name: string, osState: string, sizeGB: number, dataDisk = false) {
    const r = await t.call('PUT', `${gallery}/images/${name}?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState, identifier: { publisher: 'school', offer: name, sku: '1' } },
    });
    expect(r.status).toBe(201);
    const v = await t.call('PUT', `${gallery}/images/${name}/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: {
        storageProfile: {
          osDiskImage: { source: { uri: `labforge:empty-disk?sizeGB=${sizeGB}` } },
          ...(dataDisk ? { dataDiskImages: [{ lun: 0, source: { uri: 'labforge:empty-disk?sizeGB=1' } }] } : {}),
        },
      },
    });
    await op(v);
  }
  const labBody = (
    image: string,
    extra: Record<string, unknown> = {},
    admin: Record<string, unknown> | null = { username: 'teacher', password: 'Classroom-2026' },
  ) => ({
    location: 'site-a',
    properties: {
      labPlanId: plan,
      title: 'Physics 101',
      virtualMachineProfile: {
        createOption: 'TemplateVM',
        imageReference: { id: image },
        sku: { name: 'Standard_B1s', capacity: 0 },
        usageQuota: 'PT10H',
        ...(admin ? { adminUser: admin } : {}),
        ...extra,
      },
    },
  });

  beforeAll(async () => {
    t = await startTestServer(dialect, { env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    rg = `/subscriptions/${t.sub}/resourceGroups/school`;
    expect((await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    gallery = `${rg}/providers/Microsoft.Compute/galleries/images`;
    expect((await t.call('PUT', `${gallery}?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
    await imageDef('course', 'Generalized', 1);
    await imageDef('huge', 'Generalized', 200);
    await imageDef('twodisk', 'Generalized', 1, true);
    creatorA = await t.tokenFor('creator', 'rivera');
    creatorB = await t.tokenFor('creator', 'okafor');
    student = await t.tokenFor('user', 'kim@school.edu');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lets only admins create a lab plan and attach its gallery; creators see enabled images only, admins see why others are hidden', async () => {
    const planUrl = `${rg}/providers/Microsoft.LabServices/labPlans/science?${LS}`;
    const body = { location: 'site-a', properties: { sharedGalleryId: gallery, allowedRegions: ['site-a'] } };
    expect((await t.call('PUT', planUrl, body, { token: creatorA })).status).toBe(403);
    const created = await t.call('PUT', planUrl, body);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.properties.sharedGalleryId).toBe(gallery);
    plan = created.body.id;
    const images = `${rg}/providers/Microsoft.LabServices/labPlans/science/images`;
    // Disabled by default: a creator sees nothing yet; the admin sees the eligible image, disabled.
    expect((await t.call('GET', `${images}?${LS}`, undefined, { token: creatorA })).body.value).toEqual([]);
    const adminView = (await t.call('GET', `${images}?${LS}`)).body.value;
    expect(adminView.map((i: { name: string; properties: { enabledState: string } }) => [i.name, i.properties.enabledState])).toEqual([['course', 'Disabled']]);
    expect((await t.call('PATCH', `${images}/course?${LS}`, { properties: { enabledState: 'Enabled' } }, { token: creatorA })).status).toBe(403);
    for (const name of ['course', 'huge', 'twodisk']) {
      expect((await t.call('PATCH', `${images}/${name}?${LS}`, { properties: { enabledState: 'Enabled' } })).status).toBe(200);
    }
    const offered = (await t.call('GET', `${images}?${LS}`, undefined, { token: creatorA })).body.value;
    expect(offered.map((i: { name: string }) => i.name)).toEqual(['course']);
    expect(offered[0].properties).toMatchObject({ osType: 'Linux', osState: 'Generalized', availableRegions: ['site-a'], version: '1.0.0', osDiskSizeGB: 1 });
    expect((await t.call('GET', `${images}?${LS}&includeHidden=true`, undefined, { token: creatorA })).status).toBe(403);
    const hidden = (await t.call('GET', `${images}?${LS}&includeHidden=true`)).body.value;
    const reasons = Object.fromEntries(hidden.map((i: { name: string; properties: { hiddenReasons: string[] } }) => [i.name, i.properties.hiddenReasons]));
    expect(reasons).toEqual({ course: [], huge: ['TooLarge'], twodisk: ['MultipleDisks'] });
  });

  it('creates a lab from an offered image with its template running; refuses hidden images and missing credentials with the reason', async () => {
    const tooBig = await t.call('PUT', labUrl('big'), labBody(`${plan}/images/huge`), { token: creatorA });
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.error.code).toBe('ImageNotAvailable');
    expect(tooBig.body.error.message).toMatch(/200 GB.*under 128 GB/);
    const two = await t.call('PUT', labUrl('two'), labBody(`${gallery}/images/twodisk`), { token: creatorA });
    expect(two.body.error.message).toMatch(/2 disks/);
    const noCreds = await t.call('PUT', labUrl('nocreds'), labBody(`${plan}/images/course`, {}, null), { token: creatorA });
    expect(noCreds.status).toBe(400);
    expect(noCreds.body.error.code).toBe('CredentialsRequired');

    const r = await t.call('PUT', labUrl('physics-a'), labBody(`${plan}/images/course`, { sku: { name: 'Standard_B1s', capacity: 3 } }), { token: creatorA });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.properties).toMatchObject({ state: 'Draft', provisioningState: 'Creating', labPlanId: plan });
    expect(JSON.stringify(r.body)).not.toContain('Classroom-2026');
    await op(r);
    const lab = (await t.call('GET', labUrl('physics-a'), undefined, { token: creatorA })).body;
    expect(lab.properties).toMatchObject({ provisioningState: 'Succeeded', state: 'Draft' });
    expect(lab.properties.virtualMachineProfile.imageReference.exactVersion).toBe('1.0.0');
    const vms = (await t.call('GET', labUrl('physics-a', '/virtualMachines'), undefined, { token: creatorA })).body.value;
    expect(vms.map((v: { name: string; properties: { vmType: string; state: string } }) => [v.name, v.properties.vmType, v.properties.state])).toEqual([
      ['template', 'Template', 'Running'],
    ]);
    // Another creator may look but not change it.
    expect((await t.call('GET', labUrl('physics-a'), undefined, { token: creatorB })).status).toBe(200);
    const change = await t.call('PATCH', labUrl('physics-a'), { properties: { title: 'Mine now' } }, { token: creatorB });
    expect(change.status).toBe(403);
    expect(change.body.error.message).toMatch(/belongs to 'rivera'/);
    expect((await t.call('POST', labUrl('physics-a', '/virtualMachines/template/stop'), undefined, { token: creatorB })).status).toBe(403);
  });

  it('exports the template as a new Specialized image that another lab uses without credentials, then updates it to 1.0.1', async () => {
    const save = `${rg}/providers/Microsoft.LabServices/labPlans/science/saveImage?${LS}`;
    const templateId = labUrl('physics-a', '/virtualMachines/template').split('?')[0];
    const r = await t.call('POST', save, { name: 'physics-101', labVirtualMachineId: templateId }, { token: creatorA });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.version).toBe('1.0.0');
    await op(r);
    const tpl = (await t.call('GET', labUrl('physics-a', '/virtualMachines/template'), undefined, { token: creatorA })).body;
    expect(tpl.properties.exportStatus).toMatchObject({ status: 'Succeeded', percentComplete: 100 });
    const def = (await t.call('GET', `${gallery}/images/physics-101?${COMPUTE}`)).body;
    expect(def.properties.osState).toBe('Specialized');
    const again = await t.call('POST', save, { name: 'physics-101', labVirtualMachineId: templateId }, { token: creatorA });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/update the existing image/);

    const withCreds = await t.call('PUT', labUrl('physics-b'), labBody(`${plan}/images/physics-101`), { token: creatorB });
    expect(withCreds.status).toBe(400);
    expect(withCreds.body.error.message).toMatch(/Specialized/);
    const b = await t.call('PUT', labUrl('physics-b'), labBody(`${plan}/images/physics-101`, {}, null), { token: creatorB });
    expect(b.status, JSON.stringify(b.body)).toBe(201);
    await op(b);

    const upd = await t.call('POST', save, { labVirtualMachineId: templateId, updateExisting: true }, { token: creatorA });
    expect(upd.status, JSON.stringify(upd.body)).toBe(202);
    expect(upd.body.version).toBe('1.0.1');
    await op(upd);
    const c = await t.call('PUT', labUrl('physics-c'), labBody(`${plan}/images/physics-101`, {}, null), { token: creatorB });
    await op(c);
    expect((await t.call('GET', labUrl('physics-c'))).body.properties.virtualMachineProfile.imageReference.exactVersion).toBe('1.0.1');
  });

  it('publishes seats as disks on the template snapshot, gives students their own VM only, and scales', async () => {
    const pub = await t.call('POST', labUrl('physics-a', '/publish'), undefined, { token: creatorA });
    expect(pub.status).toBe(202);
    await op(pub);
    expect((await t.call('GET', labUrl('physics-a'))).body.properties.state).toBe('Published');
    let vms = (await t.call('GET', labUrl('physics-a', '/virtualMachines'))).body.value;
    expect(vms.map((v: { name: string; properties: { state: string } }) => `${v.name}:${v.properties.state}`)).toEqual([
      'template:Running',
      '0:Stopped',
      '1:Stopped',
      '2:Stopped',
    ]);
    // Seats are defined with the driver, not started.
    const seatIds = vms.slice(1).map((v: { id: string }) => v.id);
    expect(seatIds).toHaveLength(3);
    expect([...fakeDriver.vms.values()].filter((v) => v.state === 'Stopped').length).toBeGreaterThanOrEqual(3);

    expect((await t.call('GET', labUrl('physics-a'), undefined, { token: student })).status).toBe(404);
    const add = await t.call('PUT', labUrl('physics-a', '/users/kim'), { properties: { email: 'Kim@School.edu' } }, { token: creatorA });
    expect(add.status, JSON.stringify(add.body)).toBe(201);
    expect(add.body.properties).toMatchObject({ email: 'kim@school.edu', registrationState: 'NotRegistered', invitationState: 'NotSent' });
    const invite = await t.call('POST', labUrl('physics-a', '/users/kim/invite'), {}, { token: creatorA });
    expect(invite.body.properties.invitationState).toBe('Sent');
    expect(invite.body.registrationCode).toMatch(/^[\w-]{8}$/);

    const mine = (await t.call('GET', labUrl('physics-a', '/virtualMachines'), undefined, { token: student })).body.value;
    expect(mine.map((v: { name: string; properties: { claimedByUserId: string } }) => [v.name, v.properties.claimedByUserId])).toEqual([
      ['0', 'kim@school.edu'],
    ]);
    expect((await t.call('GET', labUrl('physics-a', '/virtualMachines/1'), undefined, { token: student })).status).toBe(404);
    expect((await t.call('GET', labUrl('physics-b'), undefined, { token: student })).status).toBe(404);
    expect((await t.call('GET', `${gallery}?${COMPUTE}`, undefined, { token: student })).status).toBe(403);
    expect((await t.call('GET', labUrl('physics-a'), undefined, { token: student })).body.properties.securityProfile.registrationCode).toBeUndefined();
    const start = await t.call('POST', labUrl('physics-a', '/virtualMachines/0/start'), undefined, { token: student });
    expect(start.status).toBe(202);
    await op(start);
    const running = (await t.call('GET', labUrl('physics-a', '/virtualMachines/0'), undefined, { token: student })).body;
    expect(running.properties.state).toBe('Running');
    expect(running.properties.connectionProfile.sshAuthority).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await t.call('POST', labUrl('physics-a', '/virtualMachines/1/start'), undefined, { token: student })).status).toBe(404);

    const up = await t.call('PATCH', labUrl('physics-a'), { properties: { virtualMachineProfile: { sku: { capacity: 5 } } } }, { token: creatorA });
    expect(up.status, JSON.stringify(up.body)).toBe(202);
    await op(up);
    vms = (await t.call('GET', labUrl('physics-a', '/virtualMachines'))).body.value;
    expect(vms.map((v: { name: string }) => v.name)).toEqual(['template', '0', '1', '2', '3', '4']);
    await op(await t.call('PATCH', labUrl('physics-a'), { properties: { virtualMachineProfile: { sku: { capacity: 2 } } } }, { token: creatorA }));
    vms = (await t.call('GET', labUrl('physics-a', '/virtualMachines'))).body.value;
    expect(vms.map((v: { name: string }) => v.name)).toEqual(['template', '0', '1']);
    // Lab VMs are not Compute VMs.
    expect((await t.call('GET', `/subscriptions/${t.sub}/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01`)).body.value).toEqual([]);
  });

  it("carries a lab's rules into the Compute API: only its creator powers its VMs, nobody deletes them there, a student's start keeps to their hours", async () => {
    const compute = (vm: string, action = '') =>
      `${rg}/providers/Microsoft.Compute/virtualMachines/${encodeURIComponent(`labs/physics-a/${vm}`)}${action}?api-version=2024-07-01`;
    // physics-a is creator A's: creator B may read its VMs but not power them.
    expect((await t.call('GET', compute('1'), undefined, { token: creatorB })).status).toBe(200);
    const other = await t.call('POST', compute('1', '/start'), undefined, { token: creatorB });
    expect(other.status).toBe(403);
    expect(other.body.error.message).toMatch(/belongs to 'rivera'/);
    // Not even an admin deletes or changes a lab's VM as a Compute VM: that is the lab's scale and publish.
    const del = await t.call('DELETE', compute('1'));
    expect(del.status).toBe(409);
    expect(del.body.error.message).toMatch(/belongs to lab 'physics-a'.*Change the lab instead/);
    expect((await t.call('DELETE', compute('1'), undefined, { token: creatorB })).status).toBe(409);
    expect((await t.call('PATCH', compute('1'), { tags: { x: 'y' } })).status).toBe(409);
    // A student reaches only their own seat, and their hours count here too.
    expect((await t.call('POST', compute('1', '/start'), undefined, { token: student })).status).toBe(404);
    const quota = await t.call('PATCH', labUrl('physics-a'), { properties: { virtualMachineProfile: { usageQuota: 'PT0H' } } }, { token: creatorA });
    expect(quota.status, JSON.stringify(quota.body)).toBe(200);
    for (const url of [compute('0', '/start'), labUrl('physics-a', '/virtualMachines/0/start')]) {
      const refused = await t.call('POST', url, undefined, { token: student });
      expect(refused.status, url).toBe(409);
      expect(refused.body.error.code).toBe('QuotaExceeded');
    }
    // The lab's creator still can.
    const mine = await t.call('POST', compute('1', '/start'), undefined, { token: creatorA });
    expect(mine.status).toBe(202);
    await op(mine);
    await t.call('PATCH', labUrl('physics-a'), { properties: { virtualMachineProfile: { usageQuota: 'PT10H' } } }, { token: creatorA });
  });

  it('deletes labs with their VMs, and a lab plan only when it has no labs', async () => {
    const planUrl = `${rg}/providers/Microsoft.LabServices/labPlans/science?${LS}`;
    expect((await t.call('DELETE', planUrl)).status).toBe(409);
    expect((await t.call('DELETE', labUrl('physics-b'), undefined, { token: creatorA })).status).toBe(403);
    for (const [lab, token] of [
      ['physics-a', creatorA],
      ['physics-b', creatorB],
      ['physics-c', creatorB],
    ] as const) {
      expect((await t.call('DELETE', labUrl(lab), undefined, { token })).status).toBe(200);
    }
    expect((await t.call('DELETE', planUrl)).status).toBe(200);
    const left = await t.server.services.store.db.selectFrom('virtual_machines').select('id').execute();
    expect(left).toEqual([]);
  });
});
