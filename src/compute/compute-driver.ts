// The interface every compute backend implements (QEMU on this host now,
// KubeVirt later), and the registry that maps a driver name to its factory.
import { LabforgeError } from '../errors.js';

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

export interface VmStatus {
  id: string;
  state: VmState;
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
  /** How VMs are accelerated here, e.g. "kvm" or "tcg (software emulation)". */
  acceleration(): Promise<string>;
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

export type ComputeDriverFactory = (options: Record<string, unknown>) => ComputeDriver;
const factories = new Map<string, ComputeDriverFactory>();

export function registerComputeDriver(name: string, factory: ComputeDriverFactory): void {
  factories.set(name, factory);
}

export function createComputeDriver(name: string, options: Record<string, unknown>): ComputeDriver {
  const factory = factories.get(name);
  if (!factory) {
    throw new LabforgeError(500, 'UnknownComputeDriver', `There is no compute driver '${name}'. Use one of: ${[...factories.keys()].join(', ')}.`);
  }
  return factory(options);
}
