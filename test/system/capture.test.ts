// Capturing a VM's overlay costs what changed: only the touched blocks are
// read and stored, and the result reads back as base + the guest's writes.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BaseCache } from '../../src/compute/bases.js';
import { captureOverlay } from '../../src/compute/capture.js';
import { ChunkStore } from '../../src/imagestore/chunk-store.js';
import { LocalBlobDriver } from '../../src/imagestore/drivers/local.driver.js';
import { storedChunks } from '../helpers/images.js';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'labforge-capture-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
async function* once(b: Buffer) {
  yield b;
}

describe('capture', () => {
  it('stores only the blocks the guest changed and reads back the new content', async () => {
    const store = new ChunkStore(new LocalBlobDriver(join(dir, 'region')), 'site-a');
    const original = Buffer.concat([randomBytes(12 * MiB), Buffer.alloc(4 * MiB)]);
    const { disk } = await store.writeDisk('os', once(original), original.length);
    const base = await new BaseCache(join(dir, 'bases')).materialize(store, disk);
    const overlay = join(dir, 'vm.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, overlay]);
    // The guest writes 2 MiB at 3 MiB, 4 KiB inside block 9, and zeroes block 11.
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 3M 2M', '-c', 'write -P 0xcd 9437184 4096', '-c', 'write -z 11M 1M', overlay]);
    const expected = Buffer.from(original);
    expected.fill(0xab, 3 * MiB, 5 * MiB);
    expected.fill(0xcd, 9 * MiB, 9 * MiB + 4096);
    expected.fill(0, 11 * MiB, 12 * MiB);

    const before = (await storedChunks(join(dir, 'region'))).size;
    const { disk: captured, stats } = await captureOverlay(store, { disk, path: base }, overlay, { name: 'os' });
    expect(stats.blocksChanged).toBe(4);
    // Blocks 3 and 4 now hold the same bytes (all 0xab): one chunk serves both.
    expect(stats.chunksCreated).toBe(2);
    // 2 MiB and one 64 KiB qcow2 cluster (around the 4 KiB write) from the overlay, and the 1 MiB base block
    // to merge that cluster into: not the 16 MiB disk.
    expect(stats.bytesRead).toBe(2 * MiB + 64 * 1024 + MiB);
    expect((await storedChunks(join(dir, 'region'))).size).toBe(before + 2);
    // Block 11 became zeros: not stored (trailing zero blocks are left out of the list).
    expect(captured.blocks[11] ?? null).toBeNull();
    const parts: Buffer[] = [];
    for await (const p of store.readDisk(captured)) parts.push(p);
    expect(Buffer.compare(Buffer.concat(parts), expected)).toBe(0);
  });

  it('stores about 8 MiB of new chunks after 8 MiB of writes to a 2 GiB disk, not 2 GiB', async () => {
    const GiB = 1024 * MiB;
    const store = new ChunkStore(new LocalBlobDriver(join(dir, 'region3')), 'site-a');
    // A 2 GiB disk whose first 24 MiB hold data; the guest then writes 8 MiB at 1 GiB + 300 KiB.
    async function* image() {
      yield randomBytes(24 * MiB);
      for (let i = 24; i < 2048; i++) yield Buffer.alloc(MiB);
    }
    const { disk } = await store.writeDisk('os', image(), 2 * GiB);
    const base = await new BaseCache(join(dir, 'bases3')).materialize(store, disk);
    const overlay = join(dir, 'vm3.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, overlay]);
    const at = GiB + 300 * 1024;
    const written = randomBytes(8 * MiB);
    writeFileSync(join(dir, 'written.bin'), written);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -s ${join(dir, 'written.bin')} ${at} ${8 * MiB}`, overlay]);
    const { disk: captured, stats } = await captureOverlay(store, { disk, path: base }, overlay, { name: 'os' });
    // Rounding: the 8 MiB straddle 9 blocks of 1 MiB, so 9 chunks (9 MiB) are new. The overlay holds them in
    // 64 KiB clusters (8 MiB + one cluster), and the two partly written blocks are completed from the base (2 MiB).
    expect(stats.blocksChanged).toBe(9);
    expect(stats.chunksCreated).toBe(9);
    expect(stats.bytesCreated).toBe(9 * MiB);
    expect(stats.bytesRead).toBe(8 * MiB + 64 * 1024 + 2 * MiB);
    const first = Math.floor(at / MiB);
    for (const [i, d] of captured.blocks.entries()) {
      if (i < first || i > first + 8) expect(d ?? null).toBe(disk.blocks[i] ?? null);
    }
    const block = await store.getChunk(captured.blocks[first + 4] as string);
    const from = (first + 4) * MiB - at;
    expect(block.equals(written.subarray(from, from + MiB))).toBe(true);
  }, 60_000);

  it('captures an untouched overlay as the base itself, reading nothing', async () => {
    const store = new ChunkStore(new LocalBlobDriver(join(dir, 'region2')), 'site-a');
    const original = randomBytes(3 * MiB);
    const { disk } = await store.writeDisk('os', once(original), original.length);
    const base = await new BaseCache(join(dir, 'bases2')).materialize(store, disk);
    const overlay = join(dir, 'vm2.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, overlay]);
    const { disk: captured, stats } = await captureOverlay(store, { disk, path: base }, overlay, { name: 'os' });
    expect(stats).toEqual({ blocksChanged: 0, bytesRead: 0, chunksCreated: 0, bytesCreated: 0 });
    expect(captured.blocks).toEqual(disk.blocks);
  });
});
