// The hypervisor hosts VMs run on, with what each offers: today the one host
// of the embedded default (named "local", run by the configured compute
// driver), its acceleration verdict and the VMs on it.
import type { Acceleration, ComputeDriver } from '../compute/compute-driver.js';
import { forbidden, notFound } from '../errors.js';
import type { Principal } from '../lib/principal.js';
import type { VmRepository } from '../repositories/vm.repository.js';

export const LOCAL_HOST = 'local';

export interface Host {
  name: string;
  /** The compute driver that runs VMs there. */
  driver: string;
  state: 'Ready' | 'Unreachable';
  /** Why the host is not Ready. */
  stateReason?: string;
  acceleration?: Acceleration;
  vms: { total: number; running: number; failed: number };
}

export class HostService {
  constructor(
    private readonly vms: VmRepository,
    private readonly driver: ComputeDriver,
  ) {}

  private check(p: Principal): void {
    if (p.role !== 'admin' && p.role !== 'creator') {
      throw forbidden(`Only lab staff (admin or creator) can see hypervisor hosts; '${p.subject}' has role '${p.role}'.`);
    }
  }

  async list(p: Principal): Promise<Host[]> {
    return [await this.get(p, LOCAL_HOST)];
  }

  async get(p: Principal, name: string, opts: { recheck?: boolean } = {}): Promise<Host> {
    this.check(p);
    if (name.toLowerCase() !== LOCAL_HOST) {
      throw notFound('ResourceNotFound', `There is no host '${name}'. This server runs VMs on one host, '${LOCAL_HOST}'.`);
    }
    const byState = await this.vms.countByState();
    const vms = {
      total: [...byState.values()].reduce((a, b) => a + b, 0),
      running: byState.get('Running') ?? 0,
      failed: byState.get('Failed') ?? 0,
    };
    try {
      const acceleration = await this.driver.acceleration(opts);
      return { name: LOCAL_HOST, driver: this.driver.kind, state: 'Ready', acceleration, vms };
    } catch (err) {
      return { name: LOCAL_HOST, driver: this.driver.kind, state: 'Unreachable', stateReason: (err as Error).message, vms };
    }
  }

  /** Tests KVM on the host again (after it was fixed, or a kernel or QEMU update); admins only. */
  async checkAcceleration(p: Principal, name: string): Promise<Host> {
    if (p.role !== 'admin') throw forbidden(`Only admins can test a host's acceleration again; '${p.subject}' has role '${p.role}'.`);
    return this.get(p, name, { recheck: true });
  }
}
