// The qemu compute driver passes the compute conformance suite with real QEMU.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { QemuDriver } from '../src/compute/qemu/qemu.driver.js';
import { runComputeDriverConformance } from './helpers/compute-driver-conformance.js';

const root = mkdtempSync(join(tmpdir(), 'labforge-compute-'));
let n = 0;
afterAll(async () => {
  const d = new QemuDriver(join(root, 'vms'));
  for (const vm of await d.list()) await d.delete(vm.id);
  rmSync(root, { recursive: true, force: true });
});

runComputeDriverConformance('qemu', {
  create: () => new QemuDriver(join(root, 'vms')),
  disk: async () => {
    const path = join(root, `disk-${n++}.qcow2`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, '64M']);
    return { path, format: 'qcow2' };
  },
});
