// The `qemu` compute driver: one daemonized QEMU process per VM on this host.
// Each VM has a folder (spec, pid file, QMP and VNC sockets, serial log); the
// driver finds running VMs again from it after a server restart.
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { LabforgeError } from '../../errors.js';
import { type ComputeDriver, registerComputeDriver, type VmActivity, type VmSpec, type VmStatus } from '../compute-driver.js';
import { OVMF_VARS, qemuArgs, type VmPaths } from './qemu-args.js';
import { QmpClient } from './qmp.js';

const run = promisify(execFile);
const VM_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

interface Stored {
  spec: VmSpec;
  hostPort?: number;
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

export class QemuDriver implements ComputeDriver {
  readonly kind = 'qemu';
  private accel: Promise<'kvm' | 'tcg'> | undefined;
  private readonly busy = new Map<string, 'Starting' | 'Stopping'>();

  constructor(
    readonly vmsDir: string,
    private readonly opts: { qemu?: string; accel?: 'kvm' | 'tcg' | 'auto'; forwardAddress?: string } = {},
  ) {}

  private paths(id: string): VmPaths {
    if (!VM_ID.test(id)) throw new LabforgeError(400, 'InvalidParameter', `'${id}' is not a valid VM id.`);
    const dir = join(this.vmsDir, id);
    return {
      dir,
      pidFile: join(dir, 'qemu.pid'),
      qmpSocket: join(dir, 'qmp.sock'),
      vncSocket: join(dir, 'vnc.sock'),
      serialLog: join(dir, 'serial.log'),
      uefiVars: join(dir, 'uefi-vars.fd'),
    };
  }

  /** KVM when /dev/kvm exists and a guest really runs with it (SeaBIOS writes its banner within seconds); else software emulation. */
  private probeAccel(): Promise<'kvm' | 'tcg'> {
    if (this.opts.accel && this.opts.accel !== 'auto') return Promise.resolve(this.opts.accel);
    this.accel ??= (async () => {
      try {
        accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
      } catch {
        return 'tcg';
      }
      const log = join(this.vmsDir, `.kvm-probe-${process.pid}.log`);
      await mkdir(this.vmsDir, { recursive: true });
      const child = spawn(
        this.opts.qemu ?? 'qemu-system-x86_64',
        [
          '-machine',
          'q35,accel=kvm',
          '-cpu',
          'host',
          '-nodefaults',
          '-no-user-config',
          '-display',
          'none',
          '-m',
          '64',
          '-chardev',
          `file,id=dbg,path=${log}`,
          '-device',
          'isa-debugcon,iobase=0x402,chardev=dbg',
        ],
        { stdio: 'ignore' },
      );
      let works = false;
      for (let i = 0; i < 30 && !works && child.exitCode === null; i++) {
        await sleep(100);
        works = existsSync(log) && readFileSync(log, 'latin1').includes('SeaBIOS');
      }
      child.kill('SIGKILL');
      await rm(log, { force: true });
      return works ? 'kvm' : 'tcg';
    })();
    return this.accel;
  }

  async acceleration(): Promise<string> {
    return (await this.probeAccel()) === 'kvm' ? 'kvm' : 'tcg (software emulation: /dev/kvm is missing or does not run guests)';
  }

  private async load(id: string): Promise<Stored | undefined> {
    try {
      return JSON.parse(await readFile(join(this.paths(id).dir, 'vm.json'), 'utf8')) as Stored;
    } catch {
      return undefined;
    }
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

  async create(spec: VmSpec): Promise<VmStatus> {
    const p = this.paths(spec.id);
    await mkdir(p.dir, { recursive: true });
    for (const d of [...spec.disks, ...(spec.seed ? [spec.seed] : [])]) {
      if (!existsSync(d.path)) throw new LabforgeError(400, 'InvalidParameter', `The disk ${d.path} of VM ${spec.id} does not exist.`);
    }
    if (spec.hyperVGeneration === 'V2' && !existsSync(p.uefiVars)) await copyFile(OVMF_VARS, p.uefiVars);
    const existing = await this.load(spec.id);
    await writeFile(join(p.dir, 'vm.json'), JSON.stringify({ ...existing, spec } satisfies Stored));
    return (await this.status(spec.id)) as VmStatus;
  }

  async start(id: string): Promise<VmStatus> {
    const stored = await this.load(id);
    if (!stored) throw new LabforgeError(404, 'ResourceNotFound', `There is no VM '${id}' on this host.`);
    if (this.livePid(id)) return (await this.status(id)) as VmStatus;
    const p = this.paths(id);
    this.busy.set(id, 'Starting');
    try {
      const accel = await this.probeAccel();
      const hostPort = stored.spec.forward
        ? stored.spec.forward.hostPort || stored.hostPort || (await freePort(this.opts.forwardAddress ?? '127.0.0.1'))
        : undefined;
      await writeFile(join(p.dir, 'vm.json'), JSON.stringify({ ...stored, hostPort } satisfies Stored));
      await rm(p.qmpSocket, { force: true });
      try {
        await run(this.opts.qemu ?? 'qemu-system-x86_64', qemuArgs(stored.spec, p, accel, hostPort, this.opts.forwardAddress), { timeout: 60_000 });
      } catch (err) {
        const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
        throw new LabforgeError(500, 'VmStartFailed', `QEMU could not start VM ${id}: ${stderr.split('\n').slice(-3).join(' ')}`);
      }
      for (let i = 0; i < 100 && !existsSync(p.qmpSocket); i++) await sleep(50);
    } finally {
      this.busy.delete(id);
    }
    return (await this.status(id)) as VmStatus;
  }

  async stop(id: string, opts: { timeoutMs?: number; force?: boolean } = {}): Promise<VmStatus> {
    const pid = this.livePid(id);
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
    let state: VmStatus['state'] = busy ?? (pid ? 'Running' : 'Stopped');
    if (pid && !busy) {
      try {
        const qmp = await QmpClient.connect(p.qmpSocket, 2000);
        const s = await qmp.execute<{ status: string }>('query-status');
        qmp.close();
        if (s.status === 'internal-error' || s.status === 'guest-panicked') state = 'Failed';
      } catch {
        // QMP busy or starting up: the process is alive, report Running.
      }
    }
    return {
      id,
      state,
      ...(pid ? { pid } : {}),
      ...(pid && stored.hostPort ? { hostPort: stored.hostPort } : {}),
      serialLog: p.serialLog,
      vncSocket: p.vncSocket,
    };
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

registerComputeDriver('qemu', (options) => {
  if (typeof options.vmsDir !== 'string')
    throw new LabforgeError(500, 'InvalidComputeDriverOptions', 'The qemu compute driver needs options.vmsDir, the folder for VM state.');
  return new QemuDriver(options.vmsDir, {
    accel: options.accel as 'kvm' | 'tcg' | 'auto' | undefined,
    ...(typeof options.forwardAddress === 'string' ? { forwardAddress: options.forwardAddress } : {}),
  });
});
