// Proves whether KVM runs guests on this host, instead of guessing from
// /dev/kvm. Some hosts have a /dev/kvm that lets the firmware print its banner
// and then stops every guest with "KVM internal error ... emulation failure";
// so the probe boots a real Linux kernel (the test guest's, with the kernel
// argument `labforge.probe`) under KVM and waits, with a time bound, for the
// line its initramfs prints from user space.
//
// The verdict is cached per host in one JSON file (default
// ~/.cache/labforge/acceleration.json), keyed by what could change it: the
// QEMU binary and version, the host kernel, the probe kernel and the KVM
// device. A VM that KVM stops at its first boot marks KVM broken in the same
// cache (source "runtime"), so later VMs start under software emulation;
// `labforge doctor --recheck` (or the API's checkAcceleration) probes again.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname, release } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Acceleration } from '../compute-driver.js';
import { QmpClient } from './qmp.js';

const run = promisify(execFile);
const MARKER = 'LABFORGE-PROBE-OK';
/** How long the probe kernel may print nothing before it counts as stuck. */
const STALL_MS = 8000;

export interface ProbeOptions {
  /** The QEMU system emulator to run. */
  qemu: string;
  /** Kernel and initramfs of the test guest (scripts/build-test-guest.sh writes probe-vmlinuz and probe-initrd.img). */
  kernel: string;
  initrd: string;
  /** The per-host verdict cache. */
  cacheFile: string;
  /** The KVM device whose presence is checked first. */
  kvmDevice: string;
  /** How long the probe guest may take to reach user space under KVM. */
  timeoutMs: number;
}

interface CacheEntry extends Acceleration {
  key: string;
}

/** The last lines QEMU wrote, without its program-name prefix and the register dump of a KVM error. */
export function qemuErrorText(text: string, maxLines = 3): string {
  const lines = text
    .split('\n')
    .map((l) => l.replace(/^qemu-system-[a-z0-9_]+: /, '').trim())
    .filter((l) => l && !/^(extra data\[\d+\]|[A-Z]{2,3}\s*=|Code=|[CDE]R\d|DR\d|GDT=|IDT=|EFER=|EIP=|EAX=|ESI=)/.test(l));
  return lines.slice(-maxLines).join('; ').slice(0, 600);
}

/** True when QEMU's output says KVM could not run or emulate the guest. */
export function isKvmFailure(text: string): boolean {
  return /KVM internal error|emulation failure|failed to initialize kvm|Could not access KVM kernel module|kvm_init_vcpu|KVM_CREATE_VM|kvm run failed/i.test(
    text,
  );
}

export class AccelerationProbe {
  private memo: Promise<Acceleration> | undefined;

  constructor(private readonly opts: ProbeOptions) {}

  /** The cached verdict for this host, or a new probe when there is none (or `recheck`). */
  verdict(opts: { recheck?: boolean } = {}): Promise<Acceleration> {
    if (opts.recheck || !this.memo) {
      this.memo = this.decide(Boolean(opts.recheck));
      this.memo.catch(() => {
        this.memo = undefined;
      });
    }
    return this.memo;
  }

  /** Records that KVM stopped a real VM: VMs started from now on get software emulation. */
  async markKvmBroken(reason: string): Promise<Acceleration> {
    const key = await this.key();
    const entry: CacheEntry = {
      key,
      accelerator: 'tcg',
      kvm: 'broken',
      reason,
      checkedAt: new Date().toISOString(),
      source: 'runtime',
    };
    await this.save(entry);
    this.memo = Promise.resolve(strip(entry));
    return strip(entry);
  }

  private async decide(recheck: boolean): Promise<Acceleration> {
    const now = () => new Date().toISOString();
    if (!existsSync(this.opts.kvmDevice)) {
      return {
        accelerator: 'tcg',
        kvm: 'missing',
        reason: `${this.opts.kvmDevice} does not exist: this host offers no hardware virtualisation to labforge (turn on VT-x/AMD-V, load the kvm module, or enable nested virtualisation for a VM host).`,
        checkedAt: now(),
        source: 'probe',
      };
    }
    try {
      accessSync(this.opts.kvmDevice, constants.R_OK | constants.W_OK);
    } catch {
      return {
        accelerator: 'tcg',
        kvm: 'missing',
        reason: `${this.opts.kvmDevice} exists but this user cannot open it: add the user that runs labforge to the kvm group.`,
        checkedAt: now(),
        source: 'probe',
      };
    }
    const key = await this.key();
    if (!recheck) {
      const cached = (await this.load())[key];
      if (cached) return strip(cached);
    }
    const lock = `${this.opts.cacheFile}.lock`;
    const mine = await this.lock(lock);
    try {
      if (!mine && !recheck) {
        // Another process probed meanwhile.
        const cached = (await this.load())[key];
        if (cached) return strip(cached);
      }
      const result = await this.probe();
      const entry: CacheEntry = { key, ...result, checkedAt: now(), source: 'probe' };
      await this.save(entry);
      return strip(entry);
    } finally {
      if (mine) await rm(lock, { force: true });
    }
  }

  /** Takes the probe lock, or waits for another process's probe to end; true when this process holds it. */
  private async lock(path: string): Promise<boolean> {
    await mkdir(dirname(path), { recursive: true });
    const deadline = Date.now() + this.opts.timeoutMs + 15_000;
    while (Date.now() < deadline) {
      try {
        const fh = await open(path, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        return true;
      } catch {
        const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
        let alive = false;
        try {
          if (holder > 0) {
            process.kill(holder, 0);
            alive = true;
          }
        } catch {
          alive = false;
        }
        if (!alive) {
          await rm(path, { force: true });
          continue;
        }
        await sleep(250);
        if (!existsSync(path)) return false;
      }
    }
    return false;
  }

  /** Boots the probe kernel under KVM; the answer says whether it reached user space and, if not, why. */
  private async probe(): Promise<Pick<Acceleration, 'accelerator' | 'kvm' | 'reason'>> {
    if (!existsSync(this.opts.kernel) || !existsSync(this.opts.initrd)) {
      return {
        accelerator: 'tcg',
        kvm: 'unproven',
        reason: `${this.opts.kvmDevice} exists, but KVM could not be proven: the probe kernel (${this.opts.kernel}) is missing. Build it with: bash scripts/build-test-guest.sh`,
      };
    }
    const dir = join(dirname(this.opts.cacheFile), `probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    const serial = join(dir, 'serial.log');
    const log = join(dir, 'qemu.log');
    const qmpSocket = join(dir, 'qmp.sock');
    const started = Date.now();
    const err = await open(join(dir, 'stderr.log'), 'w');
    const child = spawn(
      this.opts.qemu,
      [
        '-name',
        'labforge-accel-probe',
        '-machine',
        'q35,accel=kvm',
        '-cpu',
        'host',
        '-m',
        '128',
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-no-reboot',
        '-kernel',
        this.opts.kernel,
        '-initrd',
        this.opts.initrd,
        '-append',
        // Verbose on purpose: a kernel that works prints all the way; one that hangs under a broken KVM falls silent.
        'console=ttyS0 earlyprintk=ttyS0 labforge.probe panic=-1',
        '-serial',
        `file:${serial}`,
        '-chardev',
        `socket,id=qmp,path=${qmpSocket},server=on,wait=off`,
        '-mon',
        'chardev=qmp,mode=control',
        '-D',
        log,
      ],
      { stdio: ['ignore', err.fd, err.fd] },
    );
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    child.once('error', () => {
      exited = true;
    });
    const output = async () => `${await readFile(join(dir, 'stderr.log'), 'utf8').catch(() => '')}\n${await readFile(log, 'utf8').catch(() => '')}`;
    try {
      let qmp: QmpClient | undefined;
      let seen = 0;
      let lastChange = Date.now();
      while (Date.now() - started < this.opts.timeoutMs) {
        const text = await readFile(serial, 'latin1').catch(() => '');
        if (text.length !== seen) {
          seen = text.length;
          lastChange = Date.now();
        } else if (seen > 0 && Date.now() - lastChange > STALL_MS) {
          // A booting kernel never falls silent this long under KVM (under software emulation, 3.5 s at most here).
          const last =
            text
              .split('\n')
              .map((l) => l.trim())
              .filter(Boolean)
              .pop() ?? '';
          return {
            accelerator: 'tcg',
            kvm: 'broken',
            reason: `KVM is present but does not run guests: the probe guest's kernel stopped making progress under KVM (its last line: "${last.slice(0, 120)}").`,
          };
        }
        if (text.includes(MARKER)) {
          const secs = ((Date.now() - started) / 1000).toFixed(1);
          return {
            accelerator: 'kvm',
            kvm: 'works',
            reason: `KVM works: a Linux kernel booted to user space under KVM in ${secs} s.`,
          };
        }
        if (exited) {
          const out = await output();
          return {
            accelerator: 'tcg',
            kvm: 'broken',
            reason: `KVM is present but does not run guests: QEMU ended the probe guest under KVM (${qemuErrorText(out) || `exit code ${child.exitCode}`}).`,
          };
        }
        if (!qmp && existsSync(qmpSocket)) qmp = await QmpClient.connect(qmpSocket, 2000).catch(() => undefined);
        const st = qmp ? await qmp.execute<{ status: string }>('query-status').catch(() => undefined) : undefined;
        if (st?.status === 'internal-error') {
          const out = await output();
          return {
            accelerator: 'tcg',
            kvm: 'broken',
            reason: `KVM is present but does not run guests: KVM stopped the probe guest with an internal error (${qemuErrorText(out) || 'emulation failure'}).`,
          };
        }
        await sleep(100);
      }
      qmp?.close();
      return {
        accelerator: 'tcg',
        kvm: 'broken',
        reason: `KVM is present but does not run guests: the probe guest did not reach user space under KVM within ${Math.round(this.opts.timeoutMs / 1000)} s (it does in about 1 s where KVM works).`,
      };
    } finally {
      if (!exited) child.kill('SIGKILL');
      await err.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** What the verdict depends on: a change to any of it means probing again. */
  private async key(): Promise<string> {
    let qemuVersion = 'unknown';
    try {
      qemuVersion = (await run(this.opts.qemu, ['-version'], { timeout: 10_000 })).stdout.split('\n')[0]?.trim() ?? 'unknown';
    } catch {
      // A QEMU that does not answer is probed (and fails) like any other.
    }
    const ident = (p: string) => {
      try {
        const s = statSync(p);
        return `${s.size}@${Math.round(s.mtimeMs)}`;
      } catch {
        return 'missing';
      }
    };
    return [hostname(), release(), this.opts.qemu, qemuVersion, this.opts.kvmDevice, ident(this.opts.kernel)].join('|');
  }

  private async load(): Promise<Record<string, CacheEntry>> {
    try {
      const doc = JSON.parse(await readFile(this.opts.cacheFile, 'utf8')) as { verdicts?: CacheEntry[] };
      return Object.fromEntries((doc.verdicts ?? []).map((v) => [v.key, v]));
    } catch {
      return {};
    }
  }

  private async save(entry: CacheEntry): Promise<void> {
    const all = await this.load();
    all[entry.key] = entry;
    await mkdir(dirname(this.opts.cacheFile), { recursive: true });
    const tmp = `${this.opts.cacheFile}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ verdicts: Object.values(all) }, null, 2)}\n`);
    await rename(tmp, this.opts.cacheFile);
  }
}

function strip(e: CacheEntry): Acceleration {
  const { key: _key, ...rest } = e;
  return rest;
}
