// `labforge doctor`: checks this host for what labforge needs and says what
// to fix: Node.js, qemu-img, prlimit, QEMU and its firmware, KVM or software
// emulation, the configuration and the metadata store.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import type { Acceleration } from '../compute/compute-driver.js';

const run = promisify(execFile);

interface Check {
  name: string;
  ok: boolean;
  /** Works, but not as well as it could (software emulation where KVM was expected). */
  warn?: boolean;
  detail: string;
}

async function version(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await run(cmd, args, { timeout: 10_000 });
    return stdout.split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('Check this host for what labforge needs (QEMU, KVM, firmware, configuration, database) and say what to fix')
    .option('-c, --config <file>', 'configuration file to check')
    .option('--recheck', 'test KVM again instead of using the verdict cached for this host (after fixing KVM, or a kernel or QEMU update)')
    .action(async (opts: { config?: string; recheck?: boolean }) => {
      const checks: Check[] = [];
      const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
      checks.push({ name: 'Node.js', ok: major > 20 || (major === 20 && minor >= 19), detail: `v${process.versions.node} (20.19 or newer needed)` });
      const pkgHint = 'install it with: apt-get install -y qemu-utils qemu-system-x86 ovmf util-linux (or run bash scripts/setup.sh as root)';
      const qemuImg = await version('qemu-img', ['--version']);
      checks.push({ name: 'qemu-img', ok: Boolean(qemuImg), detail: qemuImg ?? `missing: disk imports need it; ${pkgHint}` });
      const prlimit = await version('prlimit', ['--version']);
      checks.push({ name: 'prlimit', ok: Boolean(prlimit), detail: prlimit ?? `missing: qemu-img runs under it; ${pkgHint}` });
      const qemu = await version('qemu-system-x86_64', ['--version']);
      checks.push({ name: 'QEMU', ok: Boolean(qemu), detail: qemu ?? `missing: VMs need it; ${pkgHint}` });
      const ovmf = existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd');
      checks.push({
        name: 'UEFI firmware',
        ok: ovmf,
        detail: ovmf ? 'OVMF found (Hyper-V generation V2 images boot with UEFI)' : `missing: V2 images need it; ${pkgHint}`,
      });

      const { loadConfig } = await import('../config/config.js');
      let config: ReturnType<typeof loadConfig> | undefined;
      try {
        config = loadConfig({ file: opts.config });
        checks.push({ name: 'configuration', ok: true, detail: `${config.source}; data in ${config.dataDir}` });
      } catch (err) {
        checks.push({ name: 'configuration', ok: false, detail: (err as Error).message });
      }
      if (qemu && config) {
        const { createComputeDriver } = await import('../compute/drivers.js');
        const c = config.compute;
        if (c.driver === 'qemu') {
          const driver = createComputeDriver(c);
          checks.push(accelerationCheck(await driver.acceleration({ recheck: opts.recheck }), c.accel));
        }
      }
      if (config) {
        try {
          const { openStore } = await import('../db/database.js');
          const store = await openStore(config.database);
          await store.close();
          checks.push({
            name: 'metadata store',
            ok: true,
            detail: config.database.kind === 'sqlite' ? `SQLite ${config.database.file}` : 'PostgreSQL reachable, schema up to date',
          });
        } catch (err) {
          checks.push({ name: 'metadata store', ok: false, detail: `cannot open it: ${(err as Error).message}` });
        }
      }
      const width = Math.max(...checks.map((c) => c.name.length));
      for (const c of checks) process.stdout.write(`${c.ok ? (c.warn ? 'WARN' : 'ok  ') : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}\n`);
      const failed = checks.filter((c) => !c.ok).length;
      process.stdout.write(failed ? `\n${failed} problem(s) found.\n` : '\nEverything labforge needs is here.\n');
      if (failed) process.exitCode = 1;
    });
}

/** The acceleration line: what VMs get here, why, and what to do about it. */
export function accelerationCheck(a: Acceleration, configured: 'auto' | 'kvm' | 'tcg'): Check {
  const when = a.source === 'config' ? '' : ` (${a.source === 'runtime' ? 'seen' : 'checked'} ${a.checkedAt.slice(0, 16).replace('T', ' ')} UTC)`;
  if (a.kvm === 'works') return { name: 'acceleration', ok: true, detail: `KVM: VMs run at native speed. ${a.reason}${when}` };
  if (a.kvm === 'disabled') return { name: 'acceleration', ok: true, detail: `software emulation, as configured. ${a.reason}` };
  if (configured === 'kvm') {
    return {
      name: 'acceleration',
      ok: false,
      detail: `compute.accel is kvm, but ${a.reason}${when} The server will not start this way: fix KVM, or set compute.accel to auto.`,
    };
  }
  const what =
    a.kvm === 'broken' ? 'KVM is present but does not run guests' : a.kvm === 'unproven' ? 'KVM is present but could not be proven' : 'no KVM on this host';
  return {
    name: 'acceleration',
    ok: true,
    warn: true,
    detail: `${what}: software emulation will be used (VMs work, several times slower). Why: ${a.reason}${when}${a.kvm === 'broken' ? ' After fixing KVM, run labforge doctor --recheck.' : ''}`,
  };
}
