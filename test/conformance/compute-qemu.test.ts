// The qemu compute driver passes the compute conformance suite with real QEMU.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QemuDriver } from '../../src/compute/qemu/qemu.driver.js';
import { runComputeDriverConformance } from './compute.case.js';

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

/** The TCP ports listening on an address, from /proc/net/tcp (hex "ADDR:PORT", state 0A = LISTEN). */
function listening(hexAddr: string): number[] {
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[3] === '0A' && f[1]?.startsWith(`${hexAddr}:`))
    .map((f) => Number.parseInt((f[1] as string).split(':')[1] as string, 16));
}

describe('qemu driver port forwarding', () => {
  it('listens on loopback by default and on every interface when configured', async () => {
    for (const [forwardAddress, hex] of [
      [undefined, '0100007F'],
      ['0.0.0.0', '00000000'],
    ] as const) {
      const d = new QemuDriver(join(root, 'vms'), forwardAddress ? { forwardAddress, accel: 'tcg' } : { accel: 'tcg' });
      const id = `fwd-${hex.toLowerCase()}`;
      const path = join(root, `${id}.qcow2`);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, '64M']);
      await d.create({ id, vcpus: 1, memoryMiB: 128, hyperVGeneration: 'V1', disks: [{ path, format: 'qcow2' }], forward: { guestPort: 22, hostPort: 0 } });
      try {
        const vm = await d.start(id);
        expect(listening(hex)).toContain(vm.hostPort);
      } finally {
        await d.delete(id);
      }
    }
  }, 120_000);
});
