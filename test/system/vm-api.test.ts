// VMs through the API with real QEMU booting the test guest: the built-in
// image, Generalized identity, capture of a changed disk as a new version
// (costing what changed), Specialized copies, and the console WebSockets.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { COMPUTE, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';
import { until, untilSerial } from '../helpers/wait.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..');
const VMS = 'api-version=2024-07-01';
const MARKER = /LABFORGE-GUEST hostname=(\S+) instance-id=(\S+) boot=(\d+)/;
const PROBE = /LABFORGE-TEST user=(\d+) file=(.*)/;

describe('virtual machines on real QEMU', () => {
  let t: TestServer;
  let sub: string;
  let rgPath: string;
  let builtinImage: string;
  const password = 'Classroom-2026';

  const serialOf = (vmId: string) => join(t.dataDir, 'compute', 'vms', vmId, 'serial.log');
  const waitSerial = (vmId: string, re: RegExp, ms = 150_000) => untilSerial(serialOf(vmId), re, ms);
  const waitState = (name: string, state: string, ms = 120_000): Promise<any> =>
    until(`VM ${name} ${state}`, ms, async () => {
      const r = await t.call('GET', `${rgPath}/providers/Microsoft.Compute/virtualMachines/${name}?${VMS}`);
      return r.body?.properties?.state === state ? r.body : undefined;
    });
  /** cloud-config that reports whether the admin user exists and what /srv/homework.txt holds, on the serial console. */
  const probe = Buffer.from(
    [
      '#cloud-config',
      'runcmd:',
      '  - echo "LABFORGE-TEST user=$(grep -c \'^teacher:\' /etc/passwd) file=$(cat /srv/homework.txt 2>/dev/null || echo none)" > /dev/ttyS0',
    ].join('\n'),
  ).toString('base64');
  async function createVm(name: string, image: string, extra: Record<string, unknown> = {}, osProfile: Record<string, unknown> | null = {}) {
    const r = await t.call('PUT', `${rgPath}/providers/Microsoft.Compute/virtualMachines/${name}?${VMS}`, {
      location: 'site-a',
      properties: {
        hardwareProfile: { vmSize: 'Standard_B1s' },
        storageProfile: { imageReference: { id: image } },
        ...(osProfile === null ? {} : { osProfile: { adminUsername: 'teacher', adminPassword: password, ...osProfile } }),
        ...extra,
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const op = await waitForOperation(t, r.headers['azure-asyncoperation'] as string, 120_000);
    expect(op.status, JSON.stringify(op)).toBe('Succeeded');
    return r.body.properties.vmId as string;
  }
  const imageId = (gallery: string, image: string, version?: string) =>
    `${rgPath}/providers/Microsoft.Compute/galleries/${gallery}/images/${image}${version ? `/versions/${version}` : ''}`;

  beforeAll(async () => {
    await run('bash', [join(REPO, 'scripts', 'build-test-guest.sh')], { timeout: 170_000 });
    t = await startTestServer('sqlite', {
      env: { LABFORGE_BUILTIN_IMAGES: 'on', LABFORGE_ACCEL: 'tcg' },
      ...(process.env.KEEP_DIR ? { dataDir: process.env.KEEP_DIR } : {}),
    });
    sub = t.sub;
    expect(t.server.builtinImages).toEqual([expect.objectContaining({ name: 'labforge-test-guest', outcome: 'registered', version: '1.0.0' })]);
    builtinImage = `/subscriptions/${sub}/resourceGroups/labforge-builtin/providers/Microsoft.Compute/galleries/builtin/images/labforge-test-guest`;
    for (let i = 0; ; i++) {
      const v = await t.call('GET', `${builtinImage}/versions/1.0.0?${COMPUTE}&$expand=ReplicationStatus`);
      if (v.body?.properties?.provisioningState === 'Succeeded') break;
      if (i > 600) throw new Error(`built-in image not ready: ${JSON.stringify(v.body)}`);
      await sleep(100);
    }
    rgPath = `/subscriptions/${sub}/resourceGroups/school`;
    expect((await t.call('PUT', `${rgPath}?api-version=2021-04-01`, { location: 'site-a' })).status).toBe(201);
    expect((await t.call('PUT', `${rgPath}/providers/Microsoft.Compute/galleries/g?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
    for (const [name, osState] of [
      ['course', 'Generalized'],
      ['frozen', 'Specialized'],
    ]) {
      const r = await t.call('PUT', `${imageId('g', name as string)}?${COMPUTE}`, {
        location: 'site-a',
        properties: { osType: 'Linux', osState, hyperVGeneration: 'V1', identifier: { publisher: 'school', offer: name, sku: '1' } },
      });
      expect(r.status).toBe(201);
    }
    // course 1.0.0 is a copy of the built-in image: no chunk is stored twice.
    const v = await t.call('PUT', `${imageId('g', 'course', '1.0.0')}?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { source: { id: `${builtinImage}/versions/1.0.0` } } },
    });
    expect((await waitForOperation(t, v.headers['azure-asyncoperation'] as string, 60_000)).status).toBe('Succeeded');
  }, 240_000);

  afterAll(async () => {
    if (!t || process.env.KEEP_DIR) return;
    for (const vm of (await t.call('GET', `/subscriptions/${sub}/providers/Microsoft.Compute/virtualMachines?${VMS}`)).body?.value ?? []) {
      await t.call('DELETE', `${vm.id}?${VMS}`);
    }
    await t.close();
  });

  it('refuses a Generalized image without credentials and a Specialized one with them, saying what to do', async () => {
    const noCreds = await t.call('PUT', `${rgPath}/providers/Microsoft.Compute/virtualMachines/nocreds?${VMS}`, {
      location: 'site-a',
      properties: { storageProfile: { imageReference: { id: imageId('g', 'course') } } },
    });
    expect(noCreds.status).toBe(400);
    expect(noCreds.body.error.code).toBe('CredentialsRequired');
    expect(noCreds.body.error.message).toMatch(/Generalized.*adminUsername/);
    const weak = await t.call('PUT', `${rgPath}/providers/Microsoft.Compute/virtualMachines/weak?${VMS}`, {
      location: 'site-a',
      properties: { storageProfile: { imageReference: { id: imageId('g', 'course') } }, osProfile: { adminUsername: 'teacher', adminPassword: 'short' } },
    });
    expect(weak.status).toBe(400);
    expect(weak.body.error.target).toBe('properties.osProfile.adminPassword');
    const notThere = await t.call('PUT', `${rgPath}/providers/Microsoft.Compute/virtualMachines/far?${VMS}`, {
      location: 'site-b',
      properties: { storageProfile: { imageReference: { id: imageId('g', 'course') } }, osProfile: { adminUsername: 'teacher', adminPassword: password } },
    });
    expect(notThere.status).toBe(409);
    expect(notThere.body.error.code).toBe('ImageNotReplicated');
    expect(notThere.body.error.message).toContain('site-a');
    // Nothing was created by the refusals.
    expect((await t.call('GET', `${rgPath}/providers/Microsoft.Compute/virtualMachines?${VMS}`)).body.value).toEqual([]);
  });

  it('gives two VMs from a Generalized version their own host names and the admin user, and streams the console', async () => {
    const [a, b] = await Promise.all([
      createVm('pupil-a', imageId('g', 'course', '1.0.0'), {}, { customData: probe }),
      createVm('pupil-b', imageId('g', 'course'), {}, { customData: probe }),
    ]);
    const [ma, mb] = await Promise.all([waitSerial(a, MARKER), waitSerial(b, MARKER)]);
    expect([ma[1], ma[2], ma[3]]).toEqual(['pupil-a', a, '1']);
    expect([mb[1], mb[2], mb[3]]).toEqual(['pupil-b', b, '1']);
    for (const id of [a, b]) expect((await waitSerial(id, PROBE)).slice(1)).toEqual(['1', 'none']);
    const vm = await waitState('pupil-a', 'Running');
    expect(vm.properties.instanceView.statuses[1].code).toBe('PowerState/running');
    expect(vm.properties.connectionProfile.sshAuthority).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(vm.properties.osProfile).toEqual({ computerName: 'pupil-a', adminUsername: 'teacher' });
    expect(JSON.stringify(vm)).not.toContain(password);

    // Console: a one-minute ticket opens the serial stream (read-only) and the VNC display once each.
    const c = await t.call('POST', `${rgPath}/providers/Microsoft.Compute/virtualMachines/pupil-a/console?${VMS}`);
    expect(c.status).toBe(200);
    // The test calls the API in-process; the WebSockets go to the listening server.
    const onServer = (u: string) => u.replace(/^ws:\/\/[^/]+/, t.server.url.replace(/^http/, 'ws'));
    expect(c.body.serialUrl).toMatch(/^ws:\/\/[^/]+\/consoles\/[A-Za-z0-9_-]+\/serial$/);
    const serial = new WebSocket(onServer(c.body.serialUrl));
    let text = '';
    serial.on('message', (d) => {
      text += d.toString();
    });
    for (let i = 0; i < 100 && !text.includes('LABFORGE-GUEST hostname=pupil-a'); i++) await sleep(100);
    expect(text).toContain('LABFORGE-GUEST hostname=pupil-a');
    serial.close();
    const vnc = new WebSocket(onServer(c.body.vncUrl));
    const hello = await new Promise<string>((res, rej) => {
      vnc.once('message', (d) => res(d.toString('latin1')));
      vnc.once('error', rej);
    });
    expect(hello).toMatch(/^RFB 003\.00\d\n/);
    vnc.close();
    const again = new WebSocket(onServer(c.body.vncUrl));
    const refused = await new Promise<number>((res) => again.once('unexpected-response', (_req, r) => res(r.statusCode ?? 0)));
    expect(refused).toBe(401);

    // Stop: the guest answers the ACPI power button.
    const stop = await t.call('POST', `${rgPath}/providers/Microsoft.Compute/virtualMachines/pupil-b/powerOff?${VMS}`);
    expect(stop.status).toBe(202);
    expect((await waitForOperation(t, stop.headers['azure-asyncoperation'] as string, 90_000)).status).toBe('Succeeded');
    expect((await waitState('pupil-b', 'Stopped')).properties.connectionProfile).toEqual({});
    // Reimage drops what the guest wrote: the next boot is the disk's first again, with the same identity.
    const reimage = await t.call('POST', `${rgPath}/providers/Microsoft.Compute/virtualMachines/pupil-b/reimage?${VMS}`);
    expect(reimage.status).toBe(202);
    expect((await waitForOperation(t, reimage.headers['azure-asyncoperation'] as string, 60_000)).status).toBe('Succeeded');
    expect((await waitState('pupil-b', 'Stopped')).properties.state).toBe('Stopped');
    const start = await t.call('POST', `${rgPath}/providers/Microsoft.Compute/virtualMachines/pupil-b/start?${VMS}`);
    expect((await waitForOperation(t, start.headers['azure-asyncoperation'] as string, 60_000)).status).toBe('Succeeded');
    const markers = async () => [...readFileSync(serialOf(b), 'latin1').matchAll(new RegExp(MARKER, 'g'))];
    for (let i = 0; i < 600 && (await markers()).length < 2; i++) await sleep(250);
    const second = (await markers())[1];
    expect([second?.[1], second?.[3]]).toEqual(['pupil-b', '1']);
  }, 300_000);

  it('captures a file written in a VM as version 1.1.0 at the cost of what changed; 1.1.0 has it, 1.0.0 does not', async () => {
    const writer = Buffer.from(
      ['#cloud-config', 'write_files:', '  - path: /srv/homework.txt', '    content: chapter-1', 'power_state:', '  mode: poweroff'].join('\n'),
    ).toString('base64');
    await createVm('author', imageId('g', 'course', '1.0.0'), {}, { customData: writer });
    // The guest powers itself off: the VM is reported Stopped.
    await waitState('author', 'Stopped', 150_000);
    const versionUrl = `${imageId('g', 'course', '1.1.0')}?${COMPUTE}`;
    const capture = {
      location: 'site-a',
      properties: { storageProfile: { source: { virtualMachineId: `${rgPath}/providers/Microsoft.Compute/virtualMachines/author` } } },
    };
    // A Generalized definition takes only a generalized VM.
    const early = await t.call('PUT', versionUrl, capture);
    expect(early.status).toBe(409);
    expect(early.body.error.message).toMatch(/generalize/);
    expect((await t.call('POST', `${rgPath}/providers/Microsoft.Compute/virtualMachines/author/generalize?${VMS}`)).status).toBe(200);
    const start = await t.call('POST', `${rgPath}/providers/Microsoft.Compute/virtualMachines/author/start?${VMS}`);
    expect(start.status).toBe(409);
    expect(start.body.error.message).toMatch(/generalized/);
    const v = await t.call('PUT', versionUrl, capture);
    expect(v.status, JSON.stringify(v.body)).toBe(201);
    expect(v.body.properties.storageProfile.source.virtualMachineId).toContain('/virtualMachines/author');
    const op = await waitForOperation(t, v.headers['azure-asyncoperation'] as string, 60_000);
    expect(op.status, JSON.stringify(op)).toBe('Succeeded');
    // The guest's writes at first boot are a few MiB of the 128 MiB disk: only they were read and stored.
    const stats = op.properties.result.capture;
    expect(stats.blocksChanged).toBeGreaterThan(0);
    expect(stats.bytesCreated).toBeGreaterThan(0);
    expect(stats.bytesCreated).toBeLessThan(24 * 2 ** 20);
    expect(stats.bytesRead).toBeLessThan(32 * 2 ** 20);

    const [n11, n10] = await Promise.all([
      createVm('reader-new', imageId('g', 'course'), {}, { customData: probe }),
      createVm('reader-old', imageId('g', 'course', '1.0.0'), {}, { customData: probe }),
    ]);
    const got = await t.call('GET', `${rgPath}/providers/Microsoft.Compute/virtualMachines/reader-new?${VMS}`);
    expect(got.body.properties.storageProfile.imageReference.exactVersion).toBe('1.1.0');
    const [p11, p10] = await Promise.all([waitSerial(n11, PROBE), waitSerial(n10, PROBE)]);
    expect(p11[2]).toBe('chapter-1');
    expect(p10[2]).toBe('none');
    // A fresh identity for the new VM, not the captured VM's.
    expect((await waitSerial(n11, MARKER))[1]).toBe('reader-new');

    // A version still used by VMs cannot be deleted.
    const del = await t.call('DELETE', versionUrl);
    expect(del.status).toBe(409);
    expect(del.body.error.message).toContain('reader-new');
  }, 400_000);

  it('boots a VM from a Specialized capture as an exact copy: same host name and identity, no credentials asked', async () => {
    const src = 'reader-new';
    const srcId = (await t.call('GET', `${rgPath}/providers/Microsoft.Compute/virtualMachines/${src}?${VMS}`)).body.properties.vmId;
    // A running VM is paused for the capture and resumed after (once it has finished booting and saved its state).
    await waitSerial(srcId, MARKER);
    await waitState(src, 'Running');
    const v = await t.call('PUT', `${imageId('g', 'frozen', '1.0.0')}?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { source: { virtualMachineId: `${rgPath}/providers/Microsoft.Compute/virtualMachines/${src}` } } },
    });
    expect(v.status, JSON.stringify(v.body)).toBe(201);
    expect((await waitForOperation(t, v.headers['azure-asyncoperation'] as string, 60_000)).status).toBe('Succeeded');
    expect((await waitState(src, 'Running')).properties.state).toBe('Running');

    const withCreds = await t.call('PUT', `${rgPath}/providers/Microsoft.Compute/virtualMachines/copy-x?${VMS}`, {
      location: 'site-a',
      properties: { storageProfile: { imageReference: { id: imageId('g', 'frozen') } }, osProfile: { adminUsername: 'teacher', adminPassword: password } },
    });
    expect(withCreds.status).toBe(400);
    expect(withCreds.body.error.message).toMatch(/Specialized/);
    const copy = await createVm('copy-1', imageId('g', 'frozen'), {}, null);
    const m = await waitSerial(copy, MARKER);
    expect(m[1]).toBe('reader-new');
    expect(m[2]).toBe(srcId);
    expect(Number(m[3])).toBeGreaterThanOrEqual(2);
  }, 300_000);
});
