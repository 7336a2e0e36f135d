// The compute drivers by name: the configuration's compute.driver
// (LABFORGE_COMPUTE_DRIVER) picks one. Each entry turns the compute settings
// into that driver's options; a new driver is one more entry here.
import { join } from 'node:path';
import type { ComputeConfig } from '../config/config.js';
import type { ComputeDriver } from './compute-driver.js';
import { ComputeError } from './errors.js';
import { fakeDriver } from './fake/fake.driver.js';
import { QemuDriver } from './qemu/qemu.driver.js';

const COMPUTE_DRIVERS = {
  /** QEMU on this host: VM state under <compute dir>/vms, the accelerator proven by a probe boot. */
  qemu: (c: ComputeConfig) =>
    new QemuDriver(join(c.dir, 'vms'), {
      accel: c.accel,
      forwardAddress: c.forwardAddress,
      ...(c.qemu ? { qemu: c.qemu } : {}),
      probe: {
        kernel: c.probeKernel,
        initrd: c.probeInitrd,
        cacheFile: c.accelCacheFile,
        ...(c.kvmDevice ? { kvmDevice: c.kvmDevice } : {}),
      },
    }),
  /** Runs nothing (VMs are entries in a map): for tests of the rules; one instance per process. */
  fake: (_c: ComputeConfig) => fakeDriver,
} as const satisfies Record<string, (compute: ComputeConfig) => ComputeDriver>;

export type ComputeDriverName = keyof typeof COMPUTE_DRIVERS;

/** The names compute.driver accepts. */
export const COMPUTE_DRIVER_NAMES = Object.keys(COMPUTE_DRIVERS) as ComputeDriverName[];

const isDriverName = (name: string): name is ComputeDriverName => Object.hasOwn(COMPUTE_DRIVERS, name);

/** The driver compute.driver names, made from the compute settings. */
export function createComputeDriver(compute: ComputeConfig): ComputeDriver {
  const name = compute.driver;
  if (!isDriverName(name)) {
    throw new ComputeError(
      'UnknownComputeDriver',
      `There is no compute driver '${name}' (compute.driver, LABFORGE_COMPUTE_DRIVER). Use one of: ${COMPUTE_DRIVER_NAMES.join(', ')}.`,
    );
  }
  return COMPUTE_DRIVERS[name](compute);
}
