// The labforge test guest (scripts/build-test-guest.sh, docs/TEST-GUEST.md): builds it,
// boots it under QEMU/TCG from its own disk through the firmware (no -kernel), and checks
// that it applies a NoCloud seed, persists it across boots, runs a command disk, writes
// files that can be read back from the disk, and powers off by itself (power_state) and
// on the ACPI power button (QMP system_powerdown).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..');
const GUEST_DIR = process.env.LABFORGE_TEST_GUEST_DIR ?? join(REPO, '.labforge-data', 'test-guest');
const BASE = join(GUEST_DIR, 'guest.raw');
const BOOT_LIMIT_MS = 90_000;
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

const SEED = {
  instanceId: 'iid-labforge-0001',
  hostname: 'lab-vm-07',
  wroteFile: '/var/lib/labforge-test/hello.txt',
  wroteContent: 'hello from write_files\n  second line, indented\n',
};
const USER_DATA = `#cloud-config
users:
  - default
  - name: labadmin
    gecos: "Lab Admin"
    passwd: "$6$labforge$0123456789abcdef"
    lock_passwd: false
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIlabforgetestkey labadmin@test
write_files:
  - path: ${SEED.wroteFile}
    permissions: '0640'
    content: |
      hello from write_files
        second line, indented
  - path: /root/from-b64
    encoding: b64
    content: ${Buffer.from('base64 works\n').toString('base64')}
runcmd:
  - echo "runcmd ran on $(hostname)" > /root/runcmd.txt
  - [ sh, -c, "echo list form >> /root/runcmd.txt" ]
power_state:
  mode: poweroff
  delay: now
`;

interface Boot {
  serial: string;
  /** QEMU exited on its own (the guest powered off) rather than being killed at the time limit. */
  poweredOff: boolean;
  exitCode: number | null;
  ms: number;
}

let work: string;
let info: Record<string, string>;
let overlay: string;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk);
  return h.digest('hex');
}

function marker(serial: string): { hostname: string; instanceId: string; boot: number } | undefined {
  const m = /LABFORGE-GUEST hostname=(\S+) instance-id=(\S+) boot=(\d+)/.exec(serial);
  return m ? { hostname: m[1], instanceId: m[2], boot: Number(m[3]) } : undefined;
}

/** Sends QMP commands (after qmp_capabilities) and resolves once each has returned. */
async function qmp(socket: string, commands: string[]): Promise<void> {
  for (let i = 0; !existsSync(socket); i++) {
    if (i > 100) throw new Error('QMP socket did not appear');
    await sleep(50);
  }
  await new Promise<void>((ok, fail) => {
    const s = connect(socket);
    const queue = ['qmp_capabilities', ...commands];
    let buf = '';
    let greeted = false;
    const timer = setTimeout(() => {
      s.destroy();
      fail(new Error('QMP timed out'));
    }, 10_000);
    s.on('error', fail);
    s.on('data', (d) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        if (msg.error) {
          clearTimeout(timer);
          s.destroy();
          fail(new Error(`QMP: ${JSON.stringify(msg.error)}`));
          return;
        }
        if (msg.QMP) greeted = true;
        else if (!('return' in msg)) continue; // an event
        if (!greeted) continue;
        const next = queue.shift();
        if (next === undefined) {
          clearTimeout(timer);
          s.end();
          ok();
          return;
        }
        s.write(`${JSON.stringify({ execute: next })}\n`);
      }
    });
  });
}

/**
 * Boots the guest from `disk` (a qcow2 overlay) with extra raw drives. When `powerdownAfterMarker`
 * is set, presses the ACPI power button over QMP once the marker line is on the console.
 */
async function boot(name: string, disk: string, extra: string[], opts: { powerdownAfterMarker?: boolean; uefi?: boolean } = {}): Promise<Boot> {
  const serialFile = join(work, `${name}.serial.log`);
  const qmpSocket = join(work, `${name}.qmp`);
  const args = ['-accel', 'tcg', '-m', '256', '-smp', '1', '-nographic', '-monitor', 'none'];
  args.push('-serial', `file:${serialFile}`, '-nic', 'none', '-no-reboot', '-device', 'virtio-rng-pci');
  args.push('-qmp', `unix:${qmpSocket},server=on,wait=off`);
  if (opts.uefi) {
    const vars = join(work, `${name}.vars.fd`);
    await copyFile(OVMF_VARS, vars);
    args.push('-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`);
    args.push('-drive', `if=pflash,format=raw,file=${vars}`);
  }
  args.push('-drive', `file=${disk},if=virtio,format=qcow2`);
  for (const d of extra) args.push('-drive', `file=${d},if=virtio,format=raw,readonly=on`);

  const started = Date.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr.on('data', (d) => {
    stderr += d.toString();
  });
  let killed = false;
  const exited = new Promise<number | null>((ok) => qemu.on('exit', (code) => ok(code)));
  const limit = setTimeout(() => {
    killed = true;
    qemu.kill('SIGKILL');
  }, BOOT_LIMIT_MS);
  const readSerial = async () => (existsSync(serialFile) ? (await readFile(serialFile)).toString('latin1') : '');
  try {
    if (opts.powerdownAfterMarker) {
      let running = true;
      void exited.then(() => {
        running = false;
      });
      while (running && !marker(await readSerial())) await sleep(200);
      if (running) await qmp(qmpSocket, ['system_powerdown']);
    }
    const exitCode = await exited;
    const serial = (await readSerial()).replaceAll('\r', '');
    if (exitCode !== 0 && !killed) throw new Error(`QEMU failed (${exitCode}): ${stderr}\n${serial}`);
    return { serial, poweredOff: !killed, exitCode, ms: Date.now() - started };
  } finally {
    clearTimeout(limit);
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
  }
}

/** Reads a file from the guest's root filesystem (ext4 partition 2) inside a qcow2 overlay. */
async function readGuestFile(disk: string, path: string): Promise<string> {
  const flat = join(work, 'flat.raw');
  await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', disk, flat]);
  try {
    const { stdout } = await run('debugfs', ['-R', `cat ${path}`, `${flat}?offset=${info.root_offset_bytes}`], {
      maxBuffer: 16 << 20,
    });
    return stdout;
  } finally {
    await rm(flat, { force: true });
  }
}

async function seedIso(name: string, metaData: string, userData: string): Promise<string> {
  const dir = join(work, `${name}-src`);
  await mkdir(dir);
  await writeFile(join(dir, 'meta-data'), metaData);
  await writeFile(join(dir, 'user-data'), userData);
  const iso = join(work, `${name}.iso`);
  await run('genisoimage', ['-quiet', '-V', 'cidata', '-J', '-r', '-o', iso, join(dir, 'meta-data'), join(dir, 'user-data')]);
  return iso;
}

/** A NoCloud seed on a FAT filesystem labelled CIDATA (the other form cloud-init accepts). */
async function seedVfat(name: string, metaData: string, userData: string): Promise<string> {
  const dir = join(work, `${name}-src`);
  await mkdir(dir);
  await writeFile(join(dir, 'meta-data'), metaData);
  await writeFile(join(dir, 'user-data'), userData);
  const img = join(work, `${name}.img`);
  await run('mkfs.vfat', ['-n', 'CIDATA', '-C', img, '1024']);
  await run('mcopy', ['-i', img, join(dir, 'meta-data'), join(dir, 'user-data'), '::/'], {
    env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
  });
  return img;
}

async function newOverlay(name: string): Promise<string> {
  const file = join(work, `${name}.qcow2`);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', BASE, file]);
  return file;
}

beforeAll(async () => {
  // Installs what it needs when root; skips the build when its inputs are unchanged.
  await run('bash', [join(REPO, 'scripts', 'build-test-guest.sh'), GUEST_DIR], { maxBuffer: 16 << 20, timeout: 180_000 });
  info = Object.fromEntries(
    (await readFile(join(GUEST_DIR, 'guest.info'), 'utf8'))
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  work = await mkdtemp(join(tmpdir(), 'labforge-test-guest-'));
  overlay = await newOverlay('vm');
}, 180_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('test guest', () => {
  it('is a small raw disk built from Debian packages', async () => {
    const { stdout } = await run('qemu-img', ['info', '--output=json', '-f', 'raw', BASE]);
    const disk = JSON.parse(stdout);
    expect(disk['virtual-size']).toBeLessThanOrEqual(256 * 1024 * 1024);
    expect(disk['actual-size']).toBeLessThan(64 * 1024 * 1024);
    expect(info.kernel).toMatch(/-amd64$/);
    // A second run of the script is a no-op.
    const again = await run('bash', [join(REPO, 'scripts', 'build-test-guest.sh'), GUEST_DIR]);
    expect(again.stderr).toContain('up to date');
  });

  it('boots through SeaBIOS from its own disk, applies the NoCloud seed and powers off (power_state)', async () => {
    const seed = await seedIso('seed', `instance-id: ${SEED.instanceId}\nlocal-hostname: ${SEED.hostname}\n`, USER_DATA);
    const b = await boot('first', overlay, [seed]);
    console.log(`first boot (seed, power_state): ${b.ms} ms`);
    expect(b.serial).toContain('SeaBIOS');
    expect(b.serial).toContain('SYSLINUX');
    expect(marker(b.serial), b.serial).toEqual({ hostname: SEED.hostname, instanceId: SEED.instanceId, boot: 1 });
    expect(b.serial).toContain('LABFORGE-GUEST-POWER mode=poweroff');
    expect(b.poweredOff, b.serial).toBe(true);
    expect(b.exitCode).toBe(0);
  }, 120_000);

  it('keeps hostname and instance id without the seed, counts the boot and powers off on the ACPI power button', async () => {
    const b = await boot('second', overlay, [], { powerdownAfterMarker: true });
    console.log(`second boot (no seed, system_powerdown): ${b.ms} ms`);
    expect(marker(b.serial), b.serial).toEqual({ hostname: SEED.hostname, instanceId: SEED.instanceId, boot: 2 });
    expect(b.serial).toContain('LABFORGE-GUEST-POWER mode=acpi-power-button');
    expect(b.poweredOff, b.serial).toBe(true);
  }, 120_000);

  it('wrote the user, write_files and runcmd results to its disk, never to the base image', async () => {
    expect(await readGuestFile(overlay, SEED.wroteFile)).toBe(SEED.wroteContent);
    expect(await readGuestFile(overlay, '/root/from-b64')).toBe('base64 works\n');
    expect(await readGuestFile(overlay, '/root/runcmd.txt')).toBe(`runcmd ran on ${SEED.hostname}\nlist form\n`);
    expect(await readGuestFile(overlay, '/etc/passwd')).toMatch(/^labadmin:x:1000:1000:Lab Admin:\/home\/labadmin:\/bin\/sh$/m);
    expect(await readGuestFile(overlay, '/etc/shadow')).toMatch(/^labadmin:\$6\$labforge\$0123456789abcdef:/m);
    expect(await readGuestFile(overlay, '/home/labadmin/.ssh/authorized_keys')).toContain('labadmin@test');
    expect(await readGuestFile(overlay, '/var/lib/labforge/boot-count')).toBe('2\n');
    expect(await sha256(BASE)).toBe(info.sha256);
  }, 60_000);

  it('runs a command disk (label lfcmd) that writes to its disk and asks for power-off', async () => {
    const img = join(work, 'cmd.img');
    const script = join(work, 'run.sh');
    const off = join(work, 'poweroff');
    await writeFile(script, 'mkdir -p /var/lib/labforge-test\necho "cmd on boot $LABFORGE_BOOT" > /var/lib/labforge-test/cmd.txt\n');
    await writeFile(off, '');
    await run('mkfs.vfat', ['-n', 'LFCMD', '-C', img, '1024']);
    await run('mcopy', ['-i', img, script, off, '::/'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    const b = await boot('third', overlay, [img]);
    console.log(`third boot (command disk): ${b.ms} ms`);
    expect(marker(b.serial), b.serial).toEqual({ hostname: SEED.hostname, instanceId: SEED.instanceId, boot: 3 });
    expect(b.serial).toContain('LABFORGE-CMD exit=0');
    expect(b.poweredOff, b.serial).toBe(true);
    expect(await readGuestFile(overlay, '/var/lib/labforge-test/cmd.txt')).toBe('cmd on boot 3\n');
  }, 120_000);

  it.runIf(existsSync(OVMF_CODE) && existsSync(OVMF_VARS))(
    'boots the same image under UEFI (OVMF, systemd-boot) and applies a vfat CIDATA seed',
    async () => {
      const disk = await newOverlay('uefi');
      const seed = await seedVfat('seed-uefi', 'instance-id: iid-uefi\nlocal-hostname: uefi-vm\n', '#cloud-config\npower_state: {mode: poweroff}\n');
      const b = await boot('uefi', disk, [seed], { uefi: true });
      console.log(`UEFI boot (seed, power_state): ${b.ms} ms`);
      expect(b.serial).not.toContain('SeaBIOS');
      expect(marker(b.serial), b.serial).toEqual({ hostname: 'uefi-vm', instanceId: 'iid-uefi', boot: 1 });
      expect(b.poweredOff, b.serial).toBe(true);
    },
    120_000,
  );
});
