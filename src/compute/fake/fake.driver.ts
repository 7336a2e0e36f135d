// The `fake` compute driver (compute.driver: fake, LABFORGE_COMPUTE_DRIVER=fake):
// it runs nothing, VMs are entries in a map. It lets tests of the rules (who
// may see and do what, state reconciliation) run in milliseconds; the qemu
// driver is tested for real elsewhere. It keeps the driver contract all the
// same (it passes the compute conformance suite): a run has a process id and
// a port, a guest may ignore the power button, and two drivers sharing one
// state see the same VMs, as a restarted server does. Tests steer it through
// `fakeDriver`: `vms`, `pauses`, `failStarts`, `activities`, `ignorePowerButton`.
import { existsSync } from 'node:fs';
import type { ComputeDriver, VmActivity, VmCondition, VmSpec, VmStatus } from '../compute-driver.js';
import { ComputeError } from '../errors.js';

interface FakeVm {
  spec: VmSpec;
  state: VmStatus['state'];
  error?: VmCondition;
  paused: boolean;
  hostPort?: number;
  /** The current run's "process". */
  pid?: number;
  startedAt?: number;
}

let nextPid = 1000;

export class FakeComputeDriver implements ComputeDriver {
  readonly kind = 'fake';
  /** Set by tests: guests ignore the ACPI power button, so a stop waits out its timeout, then forces the VM off. */
  ignorePowerButton = false;

  /** `vms`: the host's state; give the same map to a second driver to act as the same host after a restart. */
  constructor(readonly vms = new Map<string, FakeVm>()) {}
  /** Every pause and resume, in order (captures of running VMs pause them). */
  readonly pauses: string[] = [];

  async acceleration() {
    return {
      accelerator: 'tcg' as const,
      kvm: 'disabled' as const,
      reason: 'The fake driver runs nothing.',
      checkedAt: new Date().toISOString(),
      source: 'config' as const,
    };
  }
  private need(id: string): FakeVm {
    const vm = this.vms.get(id);
    if (!vm) throw new ComputeError('ResourceNotFound', `There is no VM '${id}' on this host.`);
    return vm;
  }
  private view(id: string, vm: FakeVm): VmStatus {
    return {
      id,
      state: vm.state,
      serialLog: `/nonexistent/${id}.log`,
      ...(vm.state === 'Running' ? { pid: vm.pid ?? 1, hostPort: vm.hostPort } : {}),
      ...(vm.state === 'Failed' && vm.error ? { error: vm.error } : {}),
    };
  }
  async create(spec: VmSpec) {
    const absent = [...spec.disks, ...(spec.seed ? [spec.seed] : [])].find((d) => !existsSync(d.path));
    if (absent) throw new ComputeError('InvalidParameter', `The disk ${absent.path} of VM ${spec.id} does not exist.`);
    const existing = this.vms.get(spec.id);
    this.vms.set(spec.id, existing ? { ...existing, spec } : { spec, state: 'Stopped', paused: false });
    return this.view(spec.id, this.need(spec.id));
  }
  /** Set by tests: how many of the next starts fail (as a host out of resources would). */
  failStarts = 0;
  async start(id: string) {
    const vm = this.need(id);
    const missing = vm.spec.disks.find((d) => !existsSync(d.path));
    if (missing) {
      vm.state = 'Failed';
      vm.error = {
        code: 'DiskMissing',
        message: `The disk file of VM ${id} is missing on this host. Reimage the VM to give it a fresh disk from its image, or delete it.`,
      };
      throw new ComputeError('DiskMissing', vm.error.message);
    }
    if (this.failStarts > 0) {
      this.failStarts--;
      throw new ComputeError('HostFailure', `The host could not start VM '${id}' (a failure the test asked for).`);
    }
    if (vm.state === 'Running') return this.view(id, vm);
    vm.state = 'Running';
    vm.pid = nextPid++;
    vm.startedAt = Date.now();
    vm.hostPort ??= 20000 + this.vms.size;
    return this.view(id, vm);
  }
  async stop(id: string, opts: { timeoutMs?: number; force?: boolean } = {}) {
    const vm = this.need(id);
    // A guest that ignores the power button is forced off once the timeout has passed, as on a real host.
    if (vm.state === 'Running' && this.ignorePowerButton && !opts.force) await new Promise((r) => setTimeout(r, opts.timeoutMs ?? 60_000));
    vm.state = 'Stopped';
    vm.error = undefined;
    vm.pid = undefined;
    return this.view(id, vm);
  }
  async restart(id: string) {
    await this.stop(id);
    return this.start(id);
  }
  async pause(id: string) {
    const vm = this.need(id);
    if (vm.state !== 'Running') return false;
    vm.paused = true;
    this.pauses.push(`pause ${id}`);
    return true;
  }
  async resume(id: string) {
    this.need(id).paused = false;
    this.pauses.push(`resume ${id}`);
  }
  /** Set by tests: what each VM is doing. */
  readonly activities = new Map<string, VmActivity>();
  async activity(id: string) {
    const vm = this.vms.get(id);
    if (vm?.state !== 'Running') return undefined;
    // By default a guest that just idles: a thousandth of a CPU since it started.
    return this.activities.get(id) ?? { connections: 0, cpuSeconds: (Date.now() - (vm.startedAt ?? Date.now())) / 1_000_000 };
  }
  async delete(id: string) {
    this.vms.delete(id);
  }
  async status(id: string) {
    const vm = this.vms.get(id);
    return vm ? this.view(id, vm) : undefined;
  }
  async list() {
    return [...this.vms.entries()].map(([id, vm]) => this.view(id, vm));
  }
}

/** One fake driver per process, shared by every server a test starts with LABFORGE_COMPUTE_DRIVER=fake. */
export const fakeDriver = new FakeComputeDriver();
