// A VM's whole life on real QEMU with the test guest: the gallery image's
// chunks become a shared base, the VM an overlay with a NoCloud seed (a
// Generalized image gets its own identity), it boots through the firmware,
// powers off on the ACPI button, and its changes are captured back at the
// cost of what changed.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BaseCache } from '../../src/compute/bases.js';
import { captureOverlay } from '../../src/compute/capture.js';
import { QemuDriver } from '../../src/compute/qemu/qemu.driver.js';
import { buildSeed } from '../../src/compute/qemu/seed.js';
import { ChunkStore } from '../../src/imagestore/chunk-store.js';
import { LocalBlobDriver } from '../../src/imagestore/drivers/local.driver.js';
import { importDisk } from '../../src/imagestore/import.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..');
const GUEST_DIR = process.env.LABFORGE_TEST_GUEST_DIR ?? join(REPO, '.labforge-data', 'test-guest');

async function waitFor(file: string, re: RegExp, ms: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = existsSync(file) ? re.exec(readFileSync(file, 'latin1')) : null;
    if (m) return m;
    if (Date.now() > deadline)
      throw new Error(`no ${re} in ${file} within ${ms} ms:\n${existsSync(file) ? readFileSync(file, 'latin1').slice(-2000) : '(no log)'}`);
    await sleep(200);
  }
}

describe('VM lifecycle with the test guest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'labforge-vm-'));
  const driver = new QemuDriver(join(dir, 'vms'));
  const store = new ChunkStore(new LocalBlobDriver(join(dir, 'region')), 'site-a');
  const bases = new BaseCache(join(dir, 'bases'));

  beforeAll(async () => {
    await run('bash', [join(REPO, 'scripts', 'build-test-guest.sh'), GUEST_DIR], { timeout: 170_000 });
  }, 180_000);
  afterAll(async () => {
    for (const vm of await driver.list()) await driver.delete(vm.id);
    rmSync(dir, { recursive: true, force: true });
  });

  it('boots a Generalized image with its own identity, stops on the power button, and captures only what changed', async () => {
    const imported = await importDisk(store, join(GUEST_DIR, 'guest.raw'), { name: 'os', maxVirtualSize: 2 ** 30, tmpDir: join(dir, 'tmp'), tmpName: 'guest' });
    const base = await bases.materialize(store, imported.disk);
    const overlay = join(dir, 'student-1.qcow2');
    await bases.createOverlay(base, overlay);
    const seed = join(dir, 'seed.iso');
    await buildSeed(
      {
        instanceId: 'lab1-student-1',
        hostname: 'lab1-student-1',
        osType: 'Linux',
        adminUser: { name: 'teacher', password: 'Classroom-2026' },
        cloudConfig: { write_files: [{ path: '/home/teacher/notes.txt', content: 'homework\n' }] },
      },
      seed,
    );
    await driver.create({
      id: 'student-1',
      vcpus: 1,
      memoryMiB: 256,
      hyperVGeneration: 'V1',
      disks: [{ path: overlay, format: 'qcow2' }],
      seed: { path: seed, format: 'raw' },
      forward: { guestPort: 22, hostPort: 0 },
    });
    const running = await driver.start('student-1');
    expect(running.state).toBe('Running');
    const marker = await waitFor(running.serialLog, /LABFORGE-GUEST hostname=(\S+) instance-id=(\S+) boot=(\d+)/, 120_000);
    expect([marker[1], marker[2], marker[3]]).toEqual(['lab1-student-1', 'lab1-student-1', '1']);
    // The guest handles the ACPI power button: a clean stop, well before the forced one.
    const t0 = Date.now();
    expect((await driver.stop('student-1', { timeoutMs: 60_000 })).state).toBe('Stopped');
    expect(Date.now() - t0).toBeLessThan(50_000);

    // Capture: the guest's writes are a small part of the 128 MiB disk.
    const { disk, stats } = await captureOverlay(store, { disk: imported.disk, path: base }, overlay, { name: 'os' });
    expect(stats.blocksChanged).toBeGreaterThan(0);
    expect(stats.bytesRead).toBeLessThan(32 * 2 ** 20);
    expect(disk.virtualSize).toBe(imported.disk.virtualSize);
    expect(disk.blocks).not.toEqual(imported.disk.blocks);
    // The base was never written.
    const { stdout } = await run('sha256sum', [base]);
    const { stdout: original } = await run('sha256sum', [join(GUEST_DIR, 'guest.raw')]);
    expect(stdout.split(' ')[0]).toBe(original.split(' ')[0]);
  }, 240_000);
});
