// The `qemu` compute driver: one daemonized QEMU process per VM on this host.
// Each VM has a folder (spec, pid file, QMP and VNC sockets, serial log, what
// QEMU printed); the driver finds running VMs again from it after a server
// restart. It picks KVM only where the acceleration probe proved it works,
// restarts a VM under software emulation when KVM fails it at first boot, and
// says why a VM failed: QEMU refused to start, its disk is missing, the guest
// crashed, KVM or QEMU stopped it, or QEMU ended on its own.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultAccelCacheFile, INSTALL_ROOT } from '../../config/config.js';
import type { Acceleration, ComputeDriver, VmActivity, VmCondition, VmSpec, VmStatus } from '../compute-driver.js';
import { ComputeError } from '../errors.js';
import { AccelerationProbe, isKvmFailure, type ProbeOptions, qemuErrorText } from './accel-probe.js';
import { OVMF_VARS, qemuArgs, type VmPaths } from './qemu-args.js';
import { QmpClient } from './qmp.js';

const VM_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface QemuDriverOptions {
  /** The QEMU system emulator (default qemu-system-x86_64 on the PATH). */
  qemu?: string;
  /** auto: KVM when the probe proves it runs guests, software emulation otherwise; kvm: KVM or nothing; tcg: software emulation. */
  accel?: 'kvm' | 'tcg' | 'auto';
  forwardAddress?: string;
  /** The acceleration probe's kernel, initramfs, cache file, KVM device and time bound. */
  probe?: Partial<Omit<ProbeOptions, 'qemu'>>;
  /** How long after a start under KVM an internal error counts as KVM failing at first boot (and the VM restarts under software emulation). */
  firstBootMs?: number;
  /** Where the driver says what it did on its own (a restart under software emulation); default: standard error. */
  log?: (message: string) => void;
}

interface Stored {
  spec: VmSpec;
  hostPort?: number;
  /** The run labforge started: its accelerator, when, and what its user should know. Cleared when labforge stops it. */
  run?: { accel: 'kvm' | 'tcg'; startedAt: number; notice?: VmCondition };
  /** Why the last run or start failed; kept until the VM is started or stopped again. */
  failure?: VmCondition;
}

/** QEMU could not start the VM; `output` is what it printed. */
class LaunchFailure extends Error {
  constructor(readonly output: string) {
    super(qemuErrorText(output) || 'QEMU ended without saying why');
  }
}

async function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** Host paths in QEMU's messages become file names: students read these messages too. */
const withoutPaths = (text: string) => text.replace(/(?:\/[^\s/'",:]+)+\/([^\s/'",:]+)/g, '$1');

/** What QEMU printed before it ended on its own, as an error, or undefined when it printed nothing that is one. */
function exitReason(output: string): string | undefined {
  const signal = /terminating on signal (\d+)(?: from pid (\d+))?/.exec(output);
  if (signal)
    return `QEMU was stopped from outside labforge (signal ${signal[1]}${signal[2] ? ` sent by process ${signal[2]}` : ''}), for example by the host shutting down`;
  const lines = output.split('\n').filter((l) => l.trim() && !/warning:/i.test(l));
  return lines.length ? qemuErrorText(lines.join('\n')) : undefined;
}

export class QemuDriver implements ComputeDriver {
  readonly kind = 'qemu';
  readonly probe: AccelerationProbe;
  private readonly busy = new Map<string, 'Starting' | 'Stopping'>();
  private readonly fallbacks = new Map<string, Promise<void>>();
  private readonly qemu: string;

  constructor(
    readonly vmsDir: string,
    private readonly opts: QemuDriverOptions = {},
  ) {
    this.qemu = opts.qemu ?? 'qemu-system-x86_64';
    this.probe = new AccelerationProbe({
      qemu: this.qemu,
      kernel: opts.probe?.kernel ?? join(INSTALL_ROOT, '.labforge-data', 'test-guest', 'probe-vmlinuz'),
      initrd: opts.probe?.initrd ?? join(INSTALL_ROOT, '.labforge-data', 'test-guest', 'probe-initrd.img'),
      cacheFile: opts.probe?.cacheFile ?? defaultAccelCacheFile(),
      kvmDevice: opts.probe?.kvmDevice ?? '/dev/kvm',
      timeoutMs: opts.probe?.timeoutMs ?? 20_000,
    });
  }

  private paths(id: string): VmPaths {
    if (!VM_ID.test(id)) throw new ComputeError('InvalidParameter', `'${id}' is not a valid VM id.`);
    const dir = join(this.vmsDir, id);
    return {
      dir,
      pidFile: join(dir, 'qemu.pid'),
      qmpSocket: join(dir, 'qmp.sock'),
      vncSocket: join(dir, 'vnc.sock'),
      serialLog: join(dir, 'serial.log'),
      qemuLog: join(dir, 'qemu.log'),
      stderrLog: join(dir, 'qemu-stderr.log'),
      uefiVars: join(dir, 'uefi-vars.fd'),
    };
  }

  private log(message: string): void {
    (this.opts.log ?? ((m: string) => process.stderr.write(`labforge: ${m}\n`)))(message);
  }

  async acceleration(opts: { recheck?: boolean } = {}): Promise<Acceleration> {
    if (this.opts.accel === 'tcg') {
      return {
        accelerator: 'tcg',
        kvm: 'disabled',
        reason: 'compute.accel is tcg: VMs use software emulation (set it to auto to use KVM where it works).',
        checkedAt: new Date().toISOString(),
        source: 'config',
      };
    }
    return this.probe.verdict(opts);
  }

  /** The accelerator for a start now; with compute.accel kvm, an error when KVM does not work here. */
  private async accelForStart(): Promise<'kvm' | 'tcg'> {
    const verdict = await this.acceleration();
    if (this.opts.accel === 'kvm' && verdict.kvm !== 'works') {
      throw new ComputeError(
        'AcceleratorFailed',
        `compute.accel is kvm, but KVM does not run guests on this host: ${verdict.reason} Set compute.accel to auto to use software emulation instead.`,
      );
    }
    return verdict.accelerator;
  }

  private async load(id: string): Promise<Stored | undefined> {
    try {
      return JSON.parse(await readFile(join(this.paths(id).dir, 'vm.json'), 'utf8')) as Stored;
    } catch {
      return undefined;
    }
  }

  private async save(id: string, stored: Stored): Promise<void> {
    const file = join(this.paths(id).dir, 'vm.json');
    await writeFile(`${file}.tmp`, JSON.stringify(stored));
    await rename(`${file}.tmp`, file);
  }

  /** The QEMU process of this VM, if it is alive (the pid file alone could name a recycled pid). */
  private livePid(id: string): number | undefined {
    const p = this.paths(id);
    let pid: number;
    try {
      pid = Number(readFileSync(p.pidFile, 'utf8').trim());
      process.kill(pid, 0);
    } catch {
      return undefined;
    }
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`labforge-${id}`)) return undefined;
    } catch {
      return undefined;
    }
    return pid;
  }

  /** What QEMU printed during the current run (its stderr and its log file). */
  private async output(id: string): Promise<string> {
    const p = this.paths(id);
    const read = (f: string) => readFile(f, 'utf8').catch(() => '');
    return `${await read(p.stderrLog)}\n${await read(p.qemuLog)}`.trim();
  }

  async create(spec: VmSpec): Promise<VmStatus> {
    const p = this.paths(spec.id);
    await mkdir(p.dir, { recursive: true });
    for (const d of [...spec.disks, ...(spec.seed ? [spec.seed] : [])]) {
      if (!existsSync(d.path)) throw new ComputeError('InvalidParameter', `The disk ${d.path} of VM ${spec.id} does not exist.`);
    }
    if (spec.hyperVGeneration === 'V2' && !existsSync(p.uefiVars)) await copyFile(OVMF_VARS, p.uefiVars);
    const existing = await this.load(spec.id);
    await this.save(spec.id, { ...existing, spec });
    return (await this.status(spec.id)) as VmStatus;
  }

  /** Runs QEMU for the VM (it daemonizes); throws a LaunchFailure with its output when it does not start. */
  private async launch(id: string, stored: Stored, accel: 'kvm' | 'tcg', hostPort: number | undefined): Promise<void> {
    const p = this.paths(id);
    await rm(p.qmpSocket, { force: true });
    await rm(p.qemuLog, { force: true });
    const out = await open(p.stderrLog, 'w');
    let code: number | null;
    try {
      code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(this.qemu, qemuArgs(stored.spec, p, accel, hostPort, this.opts.forwardAddress), { stdio: ['ignore', out.fd, out.fd] });
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.once('error', (err) => {
          clearTimeout(timer);
          reject(new LaunchFailure(`${this.qemu}: ${err.message}`));
        });
        child.once('exit', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
    } finally {
      await out.close();
    }
    if (code !== 0) throw new LaunchFailure(await this.output(id));
    for (let i = 0; i < 100 && !existsSync(p.qmpSocket); i++) await sleep(50);
  }

  async start(id: string): Promise<VmStatus> {
    const stored = await this.load(id);
    if (!stored) throw new ComputeError('ResourceNotFound', `There is no VM '${id}' on this host.`);
    if (this.livePid(id)) return (await this.status(id)) as VmStatus;
    this.busy.set(id, 'Starting');
    try {
      const missing = [...stored.spec.disks, ...(stored.spec.seed ? [stored.spec.seed] : [])].find((d) => !existsSync(d.path));
      if (missing) {
        throw await this.fail(id, stored, {
          code: 'DiskMissing',
          message: `The disk file of VM ${id} (${basename(missing.path)}) is missing on this host, so it cannot start. Reimage the VM to give it a fresh disk from its image, or delete it.`,
        });
      }
      let accel: 'kvm' | 'tcg';
      try {
        accel = await this.accelForStart();
      } catch (err) {
        throw await this.fail(id, stored, { code: 'AcceleratorFailed', message: (err as Error).message });
      }
      const hostPort = stored.spec.forward
        ? stored.spec.forward.hostPort || stored.hostPort || (await freePort(this.opts.forwardAddress ?? '127.0.0.1'))
        : undefined;
      let notice: VmCondition | undefined;
      try {
        await this.launch(id, stored, accel, hostPort);
      } catch (err) {
        if (!(err instanceof LaunchFailure)) throw err;
        if (accel === 'kvm' && isKvmFailure(err.output) && this.opts.accel !== 'kvm') {
          notice = await this.kvmFailed(id, `QEMU could not start it under KVM: ${err.message}`);
          accel = 'tcg';
          try {
            await this.launch(id, stored, accel, hostPort);
          } catch (again) {
            if (!(again instanceof LaunchFailure)) throw again;
            throw await this.fail(id, stored, { code: 'QemuStartFailed', message: `QEMU could not start VM ${id}: ${withoutPaths(again.message)}` });
          }
        } else {
          const kvm = accel === 'kvm' && isKvmFailure(err.output);
          throw await this.fail(id, stored, {
            code: kvm ? 'AcceleratorFailed' : 'QemuStartFailed',
            message: `QEMU could not start VM ${id}${kvm ? ' under KVM' : ''}: ${withoutPaths(err.message)}`,
          });
        }
      }
      const { failure: _failure, ...rest } = stored;
      await this.save(id, { ...rest, hostPort, run: { accel, startedAt: Date.now(), ...(notice ? { notice } : {}) } });
      if (accel === 'kvm') this.watchFirstBoot(id);
    } finally {
      this.busy.delete(id);
    }
    return (await this.status(id)) as VmStatus;
  }

  /** Records why a start failed (the VM then reads Failed) and returns the error to throw. */
  private async fail(id: string, stored: Stored, failure: VmCondition): Promise<ComputeError> {
    const { run: _run, ...rest } = stored;
    await this.save(id, { ...rest, failure });
    return new ComputeError(failure.code, failure.message);
  }

  /** KVM failed a VM at its first boot: KVM is marked unusable on this host; returns what the VM's user is told. */
  private async kvmFailed(id: string, detail: string): Promise<VmCondition> {
    await this.probe.markKvmBroken(`KVM is present but does not run guests: it failed VM ${id} at its first boot (${detail}).`);
    this.log(
      `VM ${id}: KVM failed at its first boot (${detail}); restarting it under software emulation. KVM is marked unusable on this host until \`labforge doctor --recheck\`.`,
    );
    return {
      code: 'SoftwareEmulationFallback',
      message: `KVM failed this VM at its first boot (${withoutPaths(detail)}), so labforge restarted it under software emulation, which is slower. New VMs on this host use software emulation until KVM is checked again (labforge doctor --recheck).`,
    };
  }

  /** Stops a VM that KVM failed at first boot and starts it again under software emulation (once, however many callers). */
  private fallback(id: string, detail: string): Promise<void> {
    let running = this.fallbacks.get(id);
    if (!running) {
      running = (async () => {
        this.busy.set(id, 'Starting');
        try {
          const pid = this.livePid(id);
          if (pid) process.kill(pid, 'SIGKILL');
          for (let i = 0; i < 50 && this.livePid(id); i++) await sleep(100);
          const stored = await this.load(id);
          if (!stored) return;
          const notice = await this.kvmFailed(id, detail);
          const { run: _run, failure: _failure, ...rest } = stored;
          try {
            await this.launch(id, stored, 'tcg', stored.hostPort);
            await this.save(id, { ...rest, run: { accel: 'tcg', startedAt: Date.now(), notice } });
          } catch (err) {
            const message = `KVM failed VM ${id} at its first boot and QEMU could not start it under software emulation either: ${withoutPaths((err as Error).message)}`;
            await this.save(id, { ...rest, failure: { code: 'QemuStartFailed', message } });
          }
        } finally {
          this.busy.delete(id);
          this.fallbacks.delete(id);
        }
      })();
      this.fallbacks.set(id, running);
    }
    return running;
  }

  /** Looks at a VM started under KVM every second during its first boot, so a KVM failure is caught even when nobody reads the VM. */
  private watchFirstBoot(id: string): void {
    const until = Date.now() + (this.opts.firstBootMs ?? 120_000);
    const tick = async () => {
      const stored = await this.load(id).catch(() => undefined);
      if (!stored?.run || stored.run.accel !== 'kvm' || Date.now() > until) return;
      await this.status(id).catch(() => undefined);
      setTimeout(() => void tick(), 1000).unref();
    };
    setTimeout(() => void tick(), 1000).unref();
  }

  private inFirstBoot(stored: Stored): boolean {
    return stored.run?.accel === 'kvm' && this.opts.accel !== 'kvm' && Date.now() - stored.run.startedAt < (this.opts.firstBootMs ?? 120_000);
  }

  async stop(id: string, opts: { timeoutMs?: number; force?: boolean } = {}): Promise<VmStatus> {
    await this.fallbacks.get(id);
    const pid = this.livePid(id);
    const stored = await this.load(id);
    // A stop acknowledges a failure: the VM reads Stopped afterwards.
    if (stored && (stored.run || stored.failure)) {
      const { run: _run, failure: _failure, ...rest } = stored;
      await this.save(id, rest);
    }
    if (!pid) return (await this.status(id)) as VmStatus;
    const p = this.paths(id);
    this.busy.set(id, 'Stopping');
    try {
      if (!opts.force) {
        try {
          const qmp = await QmpClient.connect(p.qmpSocket);
          await qmp.execute('system_powerdown');
          qmp.close();
        } catch {
          // No QMP: fall through to force.
        }
        const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
        while (this.livePid(id) && Date.now() < deadline) await sleep(100);
      }
      if (this.livePid(id)) {
        // The guest ignored the power button (or force was asked): quit QEMU, then kill it.
        try {
          const qmp = await QmpClient.connect(p.qmpSocket, 2000);
          await qmp.execute('quit').catch(() => undefined);
          qmp.close();
        } catch {
          // fall through
        }
        for (let i = 0; i < 30 && this.livePid(id); i++) await sleep(100);
        if (this.livePid(id)) process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 30 && this.livePid(id); i++) await sleep(100);
      }
    } finally {
      this.busy.delete(id);
    }
    return (await this.status(id)) as VmStatus;
  }

  async restart(id: string): Promise<VmStatus> {
    await this.stop(id);
    return this.start(id);
  }

  async pause(id: string): Promise<boolean> {
    if (!this.livePid(id)) return false;
    // QMP `stop` drains and flushes every disk before it returns, so the overlay on disk is consistent.
    const qmp = await QmpClient.connect(this.paths(id).qmpSocket, 5000);
    try {
      await qmp.execute('stop');
    } finally {
      qmp.close();
    }
    return true;
  }

  async resume(id: string): Promise<void> {
    if (!this.livePid(id)) return;
    const qmp = await QmpClient.connect(this.paths(id).qmpSocket, 5000);
    try {
      await qmp.execute('cont');
    } finally {
      qmp.close();
    }
  }

  async activity(id: string): Promise<VmActivity | undefined> {
    const pid = this.livePid(id);
    if (!pid) return undefined;
    let cpuSeconds = 0;
    try {
      // utime and stime, fields 14 and 15 of /proc/<pid>/stat (after the command name in parentheses), in clock ticks.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ');
      cpuSeconds = (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return undefined;
    }
    let connections = 0;
    try {
      const qmp = await QmpClient.connect(this.paths(id).qmpSocket, 2000);
      try {
        // The user-mode network lists each connection the port forward carries as TCP[ESTABLISHED].
        const out = await qmp.execute<string>('human-monitor-command', { 'command-line': 'info usernet' });
        connections = out.split('\n').filter((l) => /TCP\[ESTABLISHED\]/.test(l)).length;
      } finally {
        qmp.close();
      }
    } catch {
      // QMP busy: count no connection this time.
    }
    return { connections, cpuSeconds };
  }

  async delete(id: string): Promise<void> {
    await this.stop(id, { force: true });
    await rm(this.paths(id).dir, { recursive: true, force: true });
  }

  async status(id: string): Promise<VmStatus | undefined> {
    const stored = await this.load(id);
    if (!stored) return undefined;
    const p = this.paths(id);
    const pid = this.livePid(id);
    const busy = this.busy.get(id);
    const base = { id, serialLog: p.serialLog, vncSocket: p.vncSocket };
    if (busy) return { ...base, state: busy, ...(pid ? { pid } : {}) };
    if (pid) {
      let runState: string | undefined;
      try {
        const qmp = await QmpClient.connect(p.qmpSocket, 2000);
        runState = (await qmp.execute<{ status: string }>('query-status')).status;
        qmp.close();
      } catch {
        // QMP busy or starting up: the process is alive, report Running.
      }
      if (runState === 'internal-error') {
        const detail = qemuErrorText(await this.output(id)) || 'an internal error';
        if (this.inFirstBoot(stored)) {
          await this.fallback(id, `KVM stopped it with ${/emulation failure/i.test(detail) ? 'an emulation failure' : 'an internal error'}: ${detail}`);
          return this.status(id);
        }
        const kvm = stored.run?.accel === 'kvm';
        return {
          ...base,
          state: 'Failed',
          pid,
          error: {
            code: kvm ? 'AcceleratorFailed' : 'EmulationFailed',
            message: `${kvm ? 'KVM' : 'QEMU'} stopped the VM with an internal error (${withoutPaths(detail)}). Stop it and start it again; if it happens again, report it with the host's details.`,
          },
        };
      }
      if (runState === 'guest-panicked') {
        return {
          ...base,
          state: 'Failed',
          pid,
          error: {
            code: 'GuestCrashed',
            message:
              "The guest operating system crashed (a kernel panic or a Windows stop error). Restart the VM; if it crashes again, look at its serial console, or reimage it to go back to the image's disk.",
          },
        };
      }
      return {
        ...base,
        state: 'Running',
        pid,
        ...(stored.hostPort ? { hostPort: stored.hostPort } : {}),
        ...(stored.run ? { accelerator: stored.run.accel } : {}),
        ...(stored.run?.notice ? { notice: stored.run.notice } : {}),
      };
    }
    if (stored.failure) return { ...base, state: 'Failed', error: stored.failure };
    if (stored.run) {
      // QEMU ended without labforge stopping it: the guest powered off, or QEMU failed.
      const output = await this.output(id);
      if (this.inFirstBoot(stored) && isKvmFailure(output)) {
        await this.fallback(id, `QEMU ended under KVM: ${qemuErrorText(output)}`);
        return this.status(id);
      }
      const reason = exitReason(output);
      const { run, ...rest } = stored;
      if (reason) {
        const kvm = run.accel === 'kvm' && isKvmFailure(output);
        const failure = {
          code: kvm ? 'AcceleratorFailed' : 'QemuExited',
          message: `${kvm ? 'KVM failed the VM and QEMU ended' : 'QEMU ended unexpectedly'}: ${withoutPaths(reason)}. Start the VM again.`,
        };
        await this.save(id, { ...rest, failure });
        return { ...base, state: 'Failed', error: failure };
      }
      await this.save(id, rest);
    }
    return { ...base, state: 'Stopped' };
  }

  async list(): Promise<VmStatus[]> {
    let names: string[] = [];
    try {
      names = (await readdir(this.vmsDir, { withFileTypes: true })).filter((e) => e.isDirectory() && VM_ID.test(e.name)).map((e) => e.name);
    } catch {
      return [];
    }
    const out: VmStatus[] = [];
    for (const n of names.sort()) {
      const s = await this.status(n);
      if (s) out.push(s);
    }
    return out;
  }
}
