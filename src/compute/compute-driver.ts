// The interface every compute backend implements (QEMU on this host now,
// KubeVirt later). The drivers by name: drivers.ts.

/** VM states as Azure Lab Services reports them. */
export type VmState = 'Stopped' | 'Starting' | 'Running' | 'Stopping' | 'ResettingPassword' | 'Reimaging' | 'Redeploying' | 'Failed';

export interface VmDisk {
  /** Path of the disk file on this host (for qemu: a qcow2 overlay). */
  path: string;
  format: 'qcow2' | 'raw';
  readOnly?: boolean;
}

export interface VmSpec {
  id: string;
  vcpus: number;
  memoryMiB: number;
  /** V1 boots with BIOS, V2 with UEFI. */
  hyperVGeneration: 'V1' | 'V2';
  disks: VmDisk[];
  /** Extra read-only disk such as a cloud-init NoCloud seed. */
  seed?: VmDisk;
  /** Guest TCP port reachable through a host port (SSH 22 or RDP 3389); 0 picks a free host port. */
  forward?: { guestPort: number; hostPort: number };
}

/** A reason with a stable code: why a VM failed, or what its user should know about how it runs. */
export interface VmCondition {
  code: string;
  message: string;
}

/** How VMs started now are accelerated on a host, and why. */
export interface Acceleration {
  /** kvm (hardware virtualisation) or tcg (QEMU's software emulation, several times slower). */
  accelerator: 'kvm' | 'tcg';
  /** What is known of KVM here: works (proven by booting a kernel), missing, broken, unproven, or disabled by configuration. */
  kvm: 'works' | 'missing' | 'broken' | 'unproven' | 'disabled';
  /** One or two sentences for people: why this accelerator. */
  reason: string;
  /** When the verdict was reached. */
  checkedAt: string;
  /** probe: the host was tested; runtime: KVM stopped a real VM; config: compute.accel decided. */
  source: 'probe' | 'runtime' | 'config';
}

export interface VmStatus {
  id: string;
  state: VmState;
  /** Why the VM is Failed (only then). */
  error?: VmCondition;
  /** What the VM's user should know while it runs (for example: restarted under software emulation). */
  notice?: VmCondition;
  /** The accelerator of the current run. */
  accelerator?: 'kvm' | 'tcg';
  pid?: number;
  /** Host port forwarded to the guest's SSH/RDP port, once running. */
  hostPort?: number;
  serialLog: string;
  vncSocket?: string;
}

export interface VmActivity {
  /** Open connections to the guest through the forwarded SSH/RDP port. */
  connections: number;
  /** CPU seconds the VM has used since it started. */
  cpuSeconds: number;
}

export interface ComputeDriver {
  readonly kind: string;
  /** How VMs started now are accelerated, and why (cached per host; `recheck` tests the host again). */
  acceleration(opts?: { recheck?: boolean }): Promise<Acceleration>;
  /** Registers a VM (nothing runs yet); idempotent for the same spec. */
  create(spec: VmSpec): Promise<VmStatus>;
  start(id: string): Promise<VmStatus>;
  /** ACPI power-down, then forced off after `timeoutMs`. */
  stop(id: string, opts?: { timeoutMs?: number; force?: boolean }): Promise<VmStatus>;
  restart(id: string): Promise<VmStatus>;
  /** Freezes a running VM with its disks flushed (for a consistent capture); false when it was not running. */
  pause(id: string): Promise<boolean>;
  resume(id: string): Promise<void>;
  /** What a running VM is doing, for auto-shutdown: connections through its forwarded port and CPU time used. */
  activity(id: string): Promise<VmActivity | undefined>;
  /** Stops the VM if needed and removes everything the driver kept for it. */
  delete(id: string): Promise<void>;
  status(id: string): Promise<VmStatus | undefined>;
  /** Every VM the driver knows, found again after a server restart. */
  list(): Promise<VmStatus[]>;
}
