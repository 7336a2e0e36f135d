// The educator's flow on real QEMU with the test guest, through the API: an
// admin attaches a gallery and enables a Generalized image; a creator makes a
// lab whose template writes a file, exports it as "physics-101" and publishes;
// another creator's lab from "physics-101" boots as an exact copy (the file
// and the template's host name); exporting again updates it to 1.0.1, which a
// third lab gets by itself.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';
import { untilSerial } from '../helpers/wait.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..');
const LS = 'api-version=2022-08-01';
const MARKER = /LABFORGE-GUEST hostname=(\S+) instance-id=(\S+) boot=(\d+)/;

describe('labs on real QEMU', () => {
  let t: TestServer;
  let rg: string;
  let gallery: string;
  let plan: string;
  let creatorA: string;
  let creatorB: string;
  const labUrl = (lab: string, rest = '') => `${rg}/providers/Microsoft.LabServices/labs/${lab}${rest}?${LS}`;
  const done = async (r: { status: number; headers: Record<string, unknown>; body: unknown }, ms = 120_000) => {
    expect(r.headers['azure-asyncoperation'], JSON.stringify(r.body)).toBeDefined();
    const o = await waitForOperation(t, r.headers['azure-asyncoperation'] as string, ms);
    expect(o.status, JSON.stringify(o)).toBe('Succeeded');
    return o;
  };
  const vmKey = async (lab: string, vm: string) =>
    (await t.server.services.store.db.selectFrom('virtual_machines').select('id').where('name', '=', `labs/${lab}/${vm}`).executeTakeFirstOrThrow()).id;
  const waitSerial = (key: string, re: RegExp, ms = 150_000) => untilSerial(join(t.dataDir, 'compute', 'vms', key, 'serial.log'), re, ms);
  const labBody = (image: string, extra: Record<string, unknown> = {}) => ({
    location: 'site-a',
    properties: {
      labPlanId: plan,
      title: 'Physics',
      virtualMachineProfile: {
        createOption: 'TemplateVM',
        imageReference: { id: image },
        sku: { name: 'Standard_B1s', capacity: 0 },
        usageQuota: 'PT10H',
        ...extra,
      },
    },
  });

  beforeAll(async () => {
    await run('bash', [join(REPO, 'scripts', 'build-test-guest.sh')], { timeout: 170_000 });
    t = await startTestServer('sqlite', { env: { LABFORGE_BUILTIN_IMAGES: 'on', LABFORGE_ACCEL: 'tcg' } });
    const builtin = `/subscriptions/${t.sub}/resourceGroups/labforge-builtin/providers/Microsoft.Compute/galleries/builtin/images/labforge-test-guest/versions/1.0.0`;
    for (let i = 0; (await t.call('GET', `${builtin}?${COMPUTE}`)).body?.properties?.provisioningState !== 'Succeeded'; i++) {
      if (i > 600) throw new Error('the built-in image was not imported');
      await sleep(100);
    }
    rg = `/subscriptions/${t.sub}/resourceGroups/school`;
    expect((await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    gallery = `${rg}/providers/Microsoft.Compute/galleries/dept`;
    expect((await t.call('PUT', `${gallery}?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
    const def = await t.call('PUT', `${gallery}/images/linux-course?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'school', offer: 'linux', sku: 'course' } },
    });
    expect(def.status).toBe(201);
    await done(
      await t.call('PUT', `${gallery}/images/linux-course/versions/1.0.0?${COMPUTE}`, {
        location: 'site-a',
        properties: { storageProfile: { source: { id: builtin } } },
      }),
    );
    for (const [name, disks] of [
      ['huge', { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=200' } } }],
      [
        'twodisk',
        { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } }, dataDiskImages: [{ lun: 0, source: { uri: 'labforge:empty-disk?sizeGB=1' } }] },
      ],
    ] as const) {
      await t.call('PUT', `${gallery}/images/${name}?${COMPUTE}`, {
        location: 'site-a',
        properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'school', offer: name, sku: '1' } },
      });
      await done(await t.call('PUT', `${gallery}/images/${name}/versions/1.0.0?${COMPUTE}`, { location: 'site-a', properties: { storageProfile: disks } }));
    }
    creatorA = await t.tokenFor('creator', 'rivera');
    creatorB = await t.tokenFor('creator', 'okafor');
  }, 240_000);

  afterAll(async () => {
    if (!t) return;
    for (const lab of (await t.call('GET', `${rg}/providers/Microsoft.LabServices/labs?${LS}`)).body?.value ?? []) await t.call('DELETE', `${lab.id}?${LS}`);
    await t.close();
  });

  it('runs the educator flow: attach, enable, create, change the template, export, publish, reuse, update', async () => {
    // The admin attaches the gallery and enables the Generalized image.
    const planRes = await t.call('PUT', `${rg}/providers/Microsoft.LabServices/labPlans/science?${LS}`, {
      location: 'site-a',
      properties: { sharedGalleryId: gallery },
    });
    expect(planRes.status).toBe(201);
    plan = planRes.body.id;
    for (const name of ['linux-course', 'huge', 'twodisk']) {
      expect((await t.call('PATCH', `${plan}/images/${name}?${LS}`, { properties: { enabledState: 'Enabled' } })).status).toBe(200);
    }
    const offered = (await t.call('GET', `${plan}/images?${LS}`, undefined, { token: creatorA })).body.value.map((i: { name: string }) => i.name);
    // The built-in image stays disabled; the big and the two-disk images are never offered.
    expect(offered).toEqual(['linux-course']);
    for (const [name, reason] of [
      ['huge', /200 GB/],
      ['twodisk', /2 disks/],
    ] as const) {
      const r = await t.call(
        'PUT',
        labUrl(`lab-${name}`),
        labBody(`${plan}/images/${name}`, { adminUser: { username: 'teacher', password: 'Classroom-2026' } }),
        { token: creatorA },
      );
      expect(r.status).toBe(400);
      expect(r.body.error.message).toMatch(reason);
    }

    // Creator A: a lab whose template writes a file at first boot.
    const customData = Buffer.from('#cloud-config\nwrite_files:\n  - path: /srv/physics.txt\n    content: momentum\n').toString('base64');
    const a = await t.call(
      'PUT',
      labUrl('physics-a'),
      labBody(`${plan}/images/linux-course`, {
        adminUser: { username: 'teacher', password: 'Classroom-2026' },
        customData,
        sku: { name: 'Standard_B1s', capacity: 3 },
      }),
      { token: creatorA },
    );
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    await done(a);
    const templateA = await vmKey('physics-a', 'template');
    const markA = await waitSerial(templateA, MARKER);
    expect(markA[1]).toBe('physics-a-template');
    expect(readFileSync(join(t.dataDir, 'compute', 'vms', templateA, 'serial.log'), 'latin1')).toContain('wrote /srv/physics.txt');

    // Export the running template as a new image (it is paused for the moment the capture takes).
    const save = `${plan}/saveImage?${LS}`;
    const templateId = labUrl('physics-a', '/virtualMachines/template').split('?')[0];
    const exp = await t.call('POST', save, { name: 'physics-101', labVirtualMachineId: templateId }, { token: creatorA });
    expect(exp.status, JSON.stringify(exp.body)).toBe(202);
    const expOp = await done(exp);
    expect(expOp.properties.result.capture.bytesCreated).toBeLessThan(32 * 2 ** 20);
    const tpl = (await t.call('GET', labUrl('physics-a', '/virtualMachines/template'), undefined, { token: creatorA })).body;
    expect(tpl.properties.state).toBe('Running');
    expect(tpl.properties.exportStatus).toMatchObject({ status: 'Succeeded', percentComplete: 100 });

    const pub = await t.call('POST', labUrl('physics-a', '/publish'), undefined, { token: creatorA });
    await done(pub);
    const seats = (await t.call('GET', labUrl('physics-a', '/virtualMachines'), undefined, { token: creatorA })).body.value;
    expect(seats.map((v: { name: string; properties: { state: string } }) => `${v.name}:${v.properties.state}`)).toEqual([
      'template:Running',
      '0:Stopped',
      '1:Stopped',
      '2:Stopped',
    ]);

    // Creator B: a lab from the Specialized export, without credentials, boots as an exact copy.
    const b = await t.call('PUT', labUrl('physics-b'), labBody(`${plan}/images/physics-101`), { token: creatorB });
    expect(b.status, JSON.stringify(b.body)).toBe(201);
    await done(b);
    const templateB = await vmKey('physics-b', 'template');
    const markB = await waitSerial(templateB, MARKER);
    expect(markB[1]).toBe('physics-a-template');
    expect(markB[2]).toBe(templateA);
    expect(Number(markB[3])).toBeGreaterThanOrEqual(2);
    await done(await t.call('POST', labUrl('physics-b', '/virtualMachines/template/stop'), undefined, { token: creatorB }), 90_000);
    // The file is on lab B's template disk.
    const flat = join(t.dataDir, 'flat-b.raw');
    await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', join(t.dataDir, 'compute', 'disks', templateB, 'os.qcow2'), flat]);
    const offset = /root_offset_bytes=(\d+)/.exec(readFileSync(join(REPO, '.labforge-data', 'test-guest', 'guest.info'), 'utf8'))?.[1];
    const { stdout } = await run('debugfs', ['-R', 'cat /srv/physics.txt', `${flat}?offset=${offset}`]);
    expect(stdout.trim()).toBe('momentum');

    // Update the existing image: version 1.0.1, which the next lab gets by itself.
    const upd = await t.call('POST', save, { labVirtualMachineId: templateId, updateExisting: true }, { token: creatorA });
    expect(upd.status, JSON.stringify(upd.body)).toBe(202);
    expect(upd.body.version).toBe('1.0.1');
    await done(upd);
    const c = await t.call('PUT', labUrl('physics-c'), labBody(`${plan}/images/physics-101`, { createOption: 'Image' }), { token: creatorB });
    await done(c);
    expect((await t.call('GET', labUrl('physics-c'))).body.properties.virtualMachineProfile.imageReference.exactVersion).toBe('1.0.1');
  }, 600_000);
});
