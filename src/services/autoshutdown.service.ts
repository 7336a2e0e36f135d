// Auto-shutdown of lab VMs, from what the host can see of them: connections
// through their forwarded SSH/RDP port and open console windows, and the CPU
// time their QEMU process uses. A lab's autoShutdownProfile says when a
// running student VM is stopped:
// - shutdownWhenNotConnected: nobody connected within noConnectDelay of the start;
// - shutdownOnDisconnect: the last connection closed disconnectDelay ago;
// - shutdownOnIdle: LowUsage, under 5% of one CPU and nobody connected for
//   idleDelay; UserAbsence, nobody connected for idleDelay (keyboard and mouse
//   input inside the guest is not visible from the host).
import type { ComputeDriver } from '../compute/compute-driver.js';
import type { AutoShutdownProfile } from '../repositories/profiles.js';
import type { VmRepository } from '../repositories/vm.repository.js';
import { SYSTEM, Ticker } from './common.js';
import { durationSeconds } from './lab.service.js';
import type { VmService } from './vm.service.js';

const LOW_USAGE = 0.05;

interface Watch {
  since: number;
  everConnected: boolean;
  lastConnected: number | undefined;
  /** CPU samples (time, seconds used), oldest first, kept for the idle window. */
  cpu: { at: number; used: number }[];
  lastBusy: number;
}

export class AutoShutdownService {
  private readonly watches = new Map<string, Watch>();
  /** Console windows open per VM (VNC or serial), counted as connections. */
  private readonly consoles = new Map<string, number>();
  readonly actions: string[] = [];

  constructor(
    private readonly vmRecords: VmRepository,
    private readonly vms: VmService,
    private readonly driver: ComputeDriver,
  ) {}

  private readonly ticker = new Ticker('auto-shutdown', () => this.tick());

  start(ms = 15_000): void {
    this.ticker.start(ms);
  }

  stop(): Promise<void> {
    return this.ticker.stop();
  }

  consoleOpened(vmKey: string): void {
    this.consoles.set(vmKey, (this.consoles.get(vmKey) ?? 0) + 1);
  }

  consoleClosed(vmKey: string): void {
    const n = (this.consoles.get(vmKey) ?? 1) - 1;
    if (n > 0) this.consoles.set(vmKey, n);
    else this.consoles.delete(vmKey);
  }

  /** Looks at every running student VM once and stops those whose lab's profile says so. */
  async tick(now = Date.now()): Promise<void> {
    const rows = await this.vmRecords.studentVmsWithShutdownProfile();
    const seen = new Set<string>();
    for (const r of rows) {
      if (r.state !== 'Running') continue;
      const activity = await this.driver.activity(r.key);
      if (!activity) continue;
      seen.add(r.key);
      let w = this.watches.get(r.key);
      if (!w) {
        w = { since: now, everConnected: false, lastConnected: undefined, cpu: [], lastBusy: now };
        this.watches.set(r.key, w);
      }
      const connections = activity.connections + (this.consoles.get(r.key) ?? 0);
      if (connections > 0) {
        w.everConnected = true;
        w.lastConnected = now;
      }
      const p = r.profile;
      const idleWindow = p.idleDelay ? durationSeconds(p.idleDelay, 'idleDelay') * 1000 : 15 * 60_000;
      w.cpu.push({ at: now, used: activity.cpuSeconds });
      while (w.cpu.length > 2 && (w.cpu[1] as { at: number }).at <= now - idleWindow) w.cpu.shift();
      const first = w.cpu[0] as { at: number; used: number };
      const span = (now - first.at) / 1000;
      if (connections > 0 || (span > 0 && (activity.cpuSeconds - first.used) / span >= LOW_USAGE)) w.lastBusy = now;
      const reason = this.reason(p, w, now, connections);
      if (!reason) continue;
      try {
        await this.vms.powerByKey(SYSTEM, r.key, 'stop');
        this.actions.push(`${new Date(now).toISOString()} ${r.name}: stopped (${reason})`);
        this.watches.delete(r.key);
      } catch {
        // Busy with another operation: look again at the next tick.
      }
    }
    for (const k of this.watches.keys()) if (!seen.has(k)) this.watches.delete(k);
    if (this.actions.length > 1000) this.actions.splice(0, this.actions.length - 1000);
  }

  private reason(p: AutoShutdownProfile, w: Watch, now: number, connections: number): string | undefined {
    const ms = (v: string | undefined, fallback: number) => (v ? durationSeconds(v, 'delay') * 1000 : fallback);
    if (p.shutdownWhenNotConnected === 'Enabled' && !w.everConnected && now - w.since >= ms(p.noConnectDelay, 15 * 60_000)) {
      return 'nobody connected after the start';
    }
    if (p.shutdownOnDisconnect === 'Enabled' && w.everConnected && connections === 0 && now - (w.lastConnected ?? now) >= ms(p.disconnectDelay, 15 * 60_000)) {
      return 'disconnected';
    }
    const idle = ms(p.idleDelay, 15 * 60_000);
    if (p.shutdownOnIdle === 'LowUsage' && now - w.lastBusy >= idle) return 'idle: low CPU use and nobody connected';
    if (p.shutdownOnIdle === 'UserAbsence' && connections === 0 && now - (w.lastConnected ?? w.since) >= idle) return 'idle: nobody connected';
    return undefined;
  }
}
