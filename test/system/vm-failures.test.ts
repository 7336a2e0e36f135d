// VMs that fail say why, and a broken KVM never leaves a VM Failed: the
// acceleration probe, the restart under software emulation when KVM fails a
// VM at its first boot, and the reasons a VM reads Failed (QEMU refused to
// start, disk missing, guest crashed), through the API, the CLI and doctor.
// Real QEMU boots the test guest; a wrapper stands in for a broken /dev/kvm.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QemuDriver } from '../../src/compute/qemu/qemu.driver.js';
import { type BrokenKvm, brokenKvm } from '../helpers/broken-kvm.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { COMPUTE, LABFORGE, startTestServer, waitForOperation } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..');
const VMS = 'api-version=2024-07-01';
const MARKER = /LABFORGE-GUEST hostname=(\S+) instance-id=(\S+) boot=(\d+)/;
const GUEST_DIR = join(REPO, '.labforge-data', 'test-guest');

/** A server booting the built-in test guest, with helpers to make VMs and read them. */
async function vmServer(env: Record<string, string>, tls = false) {
  const t = await startTestServer('sqlite', { tls, env: { LABFORGE_BUILTIN_IMAGES: 'on', ...env } });
  const image = `/subscriptions/${t.sub}/resourceGroups/labforge-builtin/providers/Microsoft.Compute/galleries/builtin/images/labforge-test-guest`;
  await until('the built-in image', 120_000, async () => {
    const v = await t.call('GET', `${image}/versions/1.0.0?${COMPUTE}`);
    return v.body?.properties?.provisioningState === 'Succeeded' ? true : undefined;
  });
  const rg = `/subscriptions/${t.sub}/resourceGroups/school`;
  expect((await t.call('PUT', `${rg}?api-version=2021-04-01`, { location: 'site-a' })).status).toBe(201);
  const vmPath = (name: string) => `${rg}/providers/Microsoft.Compute/virtualMachines/${name}?${VMS}`;
  return {
    t,
    vmPath,
    async create(name: string, customData?: string): Promise<{ vmId: string; op: any }> {
      const r = await t.call('PUT', vmPath(name), {
        location: 'site-a',
        properties: {
          hardwareProfile: { vmSize: 'Standard_B1s' },
          storageProfile: { imageReference: { id: image } },
          osProfile: { adminUsername: 'teacher', adminPassword: 'Classroom-2026', ...(customData ? { customData } : {}) },
        },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const op = await waitForOperation(t, r.headers['azure-asyncoperation'] as string, 120_000);
      return { vmId: r.body.properties.vmId as string, op };
    },
    /** Waits for the guest's marker line (its ACPI power button works from then on). */
    async booted(vmId: string): Promise<RegExpExecArray> {
      return until('the guest marker', 150_000, async () => {
        const f = join(t.dataDir, 'compute', 'vms', vmId, 'serial.log');
        return existsSync(f) ? (MARKER.exec(readFileSync(f, 'latin1')) ?? undefined) : undefined;
      });
    },
    async get(name: string): Promise<any> {
      return (await t.call('GET', vmPath(name))).body;
    },
    async power(name: string, action: 'start' | 'powerOff'): Promise<any> {
      const r = await t.call('POST', `${vmPath(name).replace('?', `/${action}?`)}`);
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      return waitForOperation(t, r.headers['azure-asyncoperation'] as string, 120_000);
    },
  };
}

const errorStatus = (vm: any) => vm.properties.instanceView.statuses.find((s: any) => s.level === 'Error');
const warningStatus = (vm: any) => vm.properties.instanceView.statuses.find((s: any) => s.level === 'Warning');

beforeAll(async () => {
  await run('bash', [join(REPO, 'scripts', 'build-test-guest.sh')], { timeout: 170_000 });
  ensureBuilt();
}, 240_000);

describe('a host whose KVM passes a quick check and then stops guests', () => {
  let kvm: BrokenKvm;
  let s: Awaited<ReturnType<typeof vmServer>>;
  beforeAll(async () => {
    kvm = brokenKvm('late-fails');
    s = await vmServer(kvm.env);
  }, 240_000);
  afterAll(async () => {
    for (const vm of (await s?.t.call('GET', `/subscriptions/${s.t.sub}/providers/Microsoft.Compute/virtualMachines?${VMS}`))?.body?.value ?? []) {
      await s.t.call('DELETE', `${vm.id}?${VMS}`);
    }
    await s?.t.close();
    rmSync(kvm.dir, { recursive: true, force: true });
  });

  it('restarts a VM that KVM fails at first boot under software emulation, says so, and marks KVM unusable on the host', async () => {
    const before = await s.t.call('GET', `/providers/Labforge.Core/hosts/local?${LABFORGE}`);
    expect(before.body.properties.acceleration).toMatchObject({ accelerator: 'kvm', kvm: 'works', source: 'probe' });

    const { vmId, op } = await s.create('pupil-1');
    expect(op.status, JSON.stringify(op)).toBe('Succeeded');
    // KVM fails it about a second after the start; labforge notices without anyone reading the VM.
    const vm = await until('the restart under software emulation', 60_000, async () => {
      const v = await s.get('pupil-1');
      return v.properties.statusCode === 'SoftwareEmulationFallback' ? v : undefined;
    });
    expect(vm.properties.state).toBe('Running');
    expect(vm.properties.statusMessage).toMatch(/KVM failed this VM at its first boot \(.*emulation failure.*\).*restarted it under software emulation/);
    expect(warningStatus(vm)).toMatchObject({ code: 'VMNotice/SoftwareEmulationFallback', displayStatus: 'Running under software emulation' });
    // The guest really boots (under software emulation) to its marker line.
    expect((await s.booted(vmId))[1]).toBe('pupil-1');
    expect((await s.get('pupil-1')).properties.state).toBe('Running');

    // The host's verdict changed with the reason, for every later VM.
    const after = await s.t.call('GET', `/providers/Labforge.Core/hosts/local?${LABFORGE}`);
    expect(after.body.properties.acceleration).toMatchObject({ accelerator: 'tcg', kvm: 'broken', source: 'runtime' });
    expect(after.body.properties.acceleration.reason).toMatch(/does not run guests.*first boot.*emulation failure/);
    const cached = JSON.parse(readFileSync(kvm.cacheFile, 'utf8'));
    expect(cached.verdicts[0]).toMatchObject({ kvm: 'broken', source: 'runtime' });
  }, 300_000);

  it('asked to check again, finds KVM broken by the probe itself; new VMs run under software emulation from the start, and doctor says why', async () => {
    kvm.setMode('probe-fails');
    const students = await s.t.tokenFor('user', 'kim@school.edu');
    expect((await s.t.call('POST', `/providers/Labforge.Core/hosts/local/checkAcceleration?${LABFORGE}`, undefined, { token: students })).status).toBe(403);
    const checked = await s.t.call('POST', `/providers/Labforge.Core/hosts/local/checkAcceleration?${LABFORGE}`);
    expect(checked.status).toBe(200);
    expect(checked.body.properties.acceleration).toMatchObject({ accelerator: 'tcg', kvm: 'broken', source: 'probe' });
    expect(checked.body.properties.acceleration.reason).toMatch(
      /KVM is present but does not run guests: QEMU ended the probe guest under KVM \(.*emulation failure/,
    );

    const { op } = await s.create('pupil-2');
    expect(op.status, JSON.stringify(op)).toBe('Succeeded');
    const vm = await s.get('pupil-2');
    expect(vm.properties.state).toBe('Running');
    expect(vm.properties.statusCode).toBeUndefined();

    const doctor = await runCli(['doctor'], { env: { ...kvm.env, LABFORGE_DATA_DIR: s.t.dataDir }, timeoutMs: 60_000 });
    expect(doctor.stdout).toMatch(
      /WARN\s+acceleration\s+KVM is present but does not run guests: software emulation will be used .*Why: .*emulation failure.*labforge doctor --recheck/,
    );
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
  }, 300_000);
});

describe('compute.accel kvm on a host where KVM fails', () => {
  it('is a clear start-up error, not failing VMs', async () => {
    const kvm = brokenKvm('probe-fails');
    try {
      await expect(startTestServer('sqlite', { env: { ...kvm.env, LABFORGE_ACCEL: 'kvm' } })).rejects.toThrow(
        /compute.accel is kvm, but KVM does not run guests on this host: .*emulation failure.*set compute.accel to auto/,
      );
      const doctor = await runCli(['doctor'], { env: { ...kvm.env, LABFORGE_ACCEL: 'kvm', LABFORGE_DATA_DIR: kvm.dir }, timeoutMs: 60_000 });
      expect(doctor.code).toBe(1);
      expect(doctor.stdout).toMatch(/FAIL\s+acceleration\s+compute.accel is kvm, but KVM is present but does not run guests/);
    } finally {
      rmSync(kvm.dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('the qemu driver when QEMU refuses KVM at start', () => {
  it('starts the VM under software emulation at once and keeps the reason with the VM', async () => {
    const kvm = brokenKvm('start-fails');
    const root = mkdtempSync(join(tmpdir(), 'labforge-kvm-start-'));
    const d = new QemuDriver(join(root, 'vms'), { qemu: kvm.qemu, probe: { kvmDevice: kvm.kvmDevice, cacheFile: kvm.cacheFile }, log: () => undefined });
    try {
      expect((await d.acceleration()).kvm).toBe('works');
      const disk = join(root, 'disk.qcow2');
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
      await d.create({ id: 'vm-1', vcpus: 1, memoryMiB: 128, hyperVGeneration: 'V1', disks: [{ path: disk, format: 'qcow2' }] });
      const started = await d.start('vm-1');
      expect(started).toMatchObject({ state: 'Running', accelerator: 'tcg', notice: { code: 'SoftwareEmulationFallback' } });
      expect(started.notice?.message).toMatch(/QEMU could not start it under KVM: .*emulation failure/);
      expect(await d.acceleration()).toMatchObject({ accelerator: 'tcg', kvm: 'broken', source: 'runtime' });
      // A second driver (a server restart) reads the same verdict from the host's cache.
      const again = new QemuDriver(join(root, 'vms'), { qemu: kvm.qemu, probe: { kvmDevice: kvm.kvmDevice, cacheFile: kvm.cacheFile } });
      expect((await again.acceleration()).kvm).toBe('broken');
      expect((await again.status('vm-1'))?.notice?.code).toBe('SoftwareEmulationFallback');
      await d.delete('vm-1');
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(kvm.dir, { recursive: true, force: true });
    }
  }, 120_000);
});

// This host's real verdict (cached per host): where KVM really is broken, a VM meets the real failure.
const realKvm = existsSync('/dev/kvm') ? await new QemuDriver(mkdtempSync(join(tmpdir(), 'labforge-real-kvm-'))).acceleration() : undefined;

describe.skipIf(realKvm?.kvm !== 'broken')('on this host, whose real KVM stops guests', () => {
  it('a VM that the real KVM stops in internal-error at first boot runs on under software emulation', async () => {
    // The probe is made to pass, so the VM really starts under KVM and meets the failure.
    const kvm = brokenKvm('probe-passes');
    const root = mkdtempSync(join(tmpdir(), 'labforge-real-kvm-'));
    const d = new QemuDriver(join(root, 'vms'), { qemu: kvm.qemu, probe: { cacheFile: kvm.cacheFile }, log: () => undefined });
    try {
      expect((await d.acceleration()).kvm).toBe('works');
      const disk = join(root, 'vm.qcow2');
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', join(GUEST_DIR, 'guest.raw'), disk]);
      await d.create({ id: 'real-1', vcpus: 1, memoryMiB: 256, hyperVGeneration: 'V1', disks: [{ path: disk, format: 'qcow2' }] });
      expect((await d.start('real-1')).accelerator).toBe('kvm');
      const after = await until('the restart under software emulation', 60_000, async () => {
        const st = await d.status('real-1');
        return st?.accelerator === 'tcg' && st.state === 'Running' ? st : undefined;
      });
      expect(after.notice?.code).toBe('SoftwareEmulationFallback');
      expect(after.notice?.message).toMatch(/KVM stopped it with an emulation failure/);
      expect(await d.acceleration()).toMatchObject({ kvm: 'broken', source: 'runtime' });
      await until('the guest marker', 150_000, async () => MARKER.exec(readFileSync(join(root, 'vms', 'real-1', 'serial.log'), 'latin1')) ?? undefined);
      await d.delete('real-1');
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(kvm.dir, { recursive: true, force: true });
    }
  }, 240_000);
});

describe('VMs that fail say why', () => {
  let s: Awaited<ReturnType<typeof vmServer>>;
  let cliEnv: Record<string, string>;
  beforeAll(async () => {
    s = await vmServer({ LABFORGE_ACCEL: 'tcg' }, true);
    const cfg = mkdtempSync(join(tmpdir(), 'labforge-cli-'));
    cliEnv = { LABFORGE_CONFIG_DIR: cfg, LABFORGE_SERVER: s.t.server.url, LABFORGE_TOKEN: s.t.adminToken, LABFORGE_CA_FILE: s.t.server.caFile as string };
  }, 240_000);
  afterAll(async () => {
    for (const vm of (await s?.t.call('GET', `/subscriptions/${s.t.sub}/providers/Microsoft.Compute/virtualMachines?${VMS}`))?.body?.value ?? []) {
      await s.t.call('DELETE', `${vm.id}?${VMS}`);
    }
    await s?.t.close();
  });
  const overlayOf = (vmId: string) => {
    const spec = JSON.parse(readFileSync(join(s.t.dataDir, 'compute', 'vms', vmId, 'vm.json'), 'utf8'));
    return spec.spec.disks[0].path as string;
  };

  it('a VM whose QEMU cannot start reads Failed with the cause, through the API and the CLI', async () => {
    const { vmId, op } = await s.create('broken-disk');
    expect(op.status).toBe('Succeeded');
    await s.booted(vmId);
    expect((await s.power('broken-disk', 'powerOff')).status).toBe('Succeeded');
    // The overlay is no qcow2 any more: QEMU refuses to open it.
    writeFileSync(overlayOf(vmId), Buffer.alloc(4096, 0x41));
    const start = await s.power('broken-disk', 'start');
    expect(start.status).toBe('Failed');
    const vm = await s.get('broken-disk');
    expect(vm.properties.state).toBe('Failed');
    expect(vm.properties.statusCode).toBe('QemuStartFailed');
    expect(vm.properties.statusMessage).toMatch(/QEMU could not start VM .*: .*(qcow2|Image is not in|Could not open)/i);
    // No host paths in what students read.
    expect(vm.properties.statusMessage).not.toContain(s.t.dataDir);
    const err = errorStatus(vm);
    expect(err).toMatchObject({ code: 'VMFailure/QemuStartFailed', level: 'Error', displayStatus: 'QEMU could not start the VM' });
    expect(err.message).toBe(vm.properties.statusMessage);
    // The instance view route gives the same.
    const view = await s.t.call('GET', s.vmPath('broken-disk').replace('?', '/instanceView?'));
    expect(view.body.statuses).toContainEqual(expect.objectContaining({ code: 'VMFailure/QemuStartFailed', level: 'Error' }));

    const show = await runCli(['vm', 'show', 'broken-disk', '-g', 'school'], { env: cliEnv });
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/State:\s+Failed/);
    expect(show.stdout).toMatch(/Why:\s+QemuStartFailed: QEMU could not start VM/);
    const list = await runCli(['vm', 'list', '-g', 'school'], { env: cliEnv });
    expect(list.stdout).toMatch(/broken-disk .*Failed \[1\]/);
    expect(list.stdout).toMatch(/\[1\] broken-disk: QemuStartFailed: QEMU could not start VM/);

    // A stop acknowledges the failure; the reason goes with it.
    expect((await s.power('broken-disk', 'powerOff')).status).toBe('Succeeded');
    const stopped = await s.get('broken-disk');
    expect(stopped.properties.state).toBe('Stopped');
    expect(stopped.properties.statusCode).toBeUndefined();
  }, 300_000);

  it('a VM whose disk is gone reads Failed with DiskMissing and what to do', async () => {
    const { vmId } = await s.create('lost-disk');
    await s.booted(vmId);
    expect((await s.power('lost-disk', 'powerOff')).status).toBe('Succeeded');
    rmSync(overlayOf(vmId));
    expect((await s.power('lost-disk', 'start')).status).toBe('Failed');
    const vm = await s.get('lost-disk');
    expect(vm.properties).toMatchObject({ state: 'Failed', statusCode: 'DiskMissing' });
    expect(vm.properties.statusMessage).toMatch(/disk file .* is missing on this host.*Reimage the VM/);
    expect(errorStatus(vm)).toMatchObject({ code: 'VMFailure/DiskMissing', displayStatus: 'Disk missing' });
  }, 300_000);

  it('a guest that crashes reads Failed with GuestCrashed', async () => {
    // The guest's first boot makes its kernel panic (sysrq c); the pvpanic device tells QEMU.
    const crash = Buffer.from(['#cloud-config', 'runcmd:', '  - echo c > /proc/sysrq-trigger'].join('\n')).toString('base64');
    await s.create('crasher', crash);
    const vm = await until('the crash', 150_000, async () => {
      const v = await s.get('crasher');
      return v.properties.state === 'Failed' ? v : undefined;
    });
    expect(vm.properties.statusCode).toBe('GuestCrashed');
    expect(errorStatus(vm)).toMatchObject({ code: 'VMFailure/GuestCrashed', level: 'Error', displayStatus: 'Guest crashed' });
    expect(errorStatus(vm).message).toMatch(/guest operating system crashed.*Restart the VM/);
  }, 300_000);
});
