// Materialised bases and copy-on-write overlays: a version's disk becomes one
// local read-only file; VMs get overlays that never change it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BaseCache } from '../../src/compute/bases.js';
import { ChunkStore } from '../../src/imagestore/chunk-store.js';
import { LocalBlobDriver } from '../../src/imagestore/drivers/local.driver.js';
import { corruptChunk } from '../helpers/images.js';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'labforge-bases-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function* once(b: Buffer) {
  yield b;
}

describe('materialised bases', () => {
  const store = new ChunkStore(new LocalBlobDriver(join(dir, 'region')), 'site-a');
  const cache = new BaseCache(join(dir, 'bases'));
  const content = Buffer.concat([randomBytes(2 * MiB), Buffer.alloc(5 * MiB), randomBytes(MiB)]);

  it('builds a sparse read-only base once and shares it', async () => {
    const { disk } = await store.writeDisk('os', once(content), content.length);
    const base = await cache.materialize(store, disk);
    expect(Buffer.compare(readFileSync(base), content)).toBe(0);
    expect(statSync(base).mode & 0o777).toBe(0o444);
    // Sparse: the 5 MiB of zeros take no space.
    expect(statSync(base).blocks * 512).toBeLessThan(content.length - 4 * MiB);
    const [a, b] = await Promise.all([cache.materialize(store, disk), cache.materialize(store, disk)]);
    expect(a).toBe(base);
    expect(b).toBe(base);
  });

  it('creates overlays whose writes never reach the base', async () => {
    const { disk } = await store.writeDisk('os', once(content), content.length);
    const base = await cache.materialize(store, disk);
    const overlay = join(dir, 'vm1.qcow2');
    await cache.createOverlay(base, overlay);
    expect(statSync(overlay).size).toBeLessThan(MiB);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', overlay]);
    expect(Buffer.compare(readFileSync(base), content)).toBe(0);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-f', 'qcow2', '--output=json', overlay]).toString());
    expect(info['backing-filename']).toBe(base);
    expect(info['backing-filename-format']).toBe('raw');
    // A second VM's overlay is a fresh empty one: the first VM's write is not in it.
    const second = join(dir, 'vm2.qcow2');
    await cache.createOverlay(base, second);
    expect(execFileSync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', second, base]).toString()).toMatch(/Images are identical/);
    await expect(cache.createOverlay(base, second)).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it('refuses to build a base from a corrupt chunk, leaving nothing behind', async () => {
    const other = Buffer.concat([randomBytes(MiB), randomBytes(MiB)]);
    const { disk } = await store.writeDisk('os', once(other), other.length);
    await corruptChunk(join(dir, 'region'), disk.blocks[1] as string);
    await expect(cache.materialize(store, disk)).rejects.toMatchObject({ code: 'ChunkCorrupt' });
    // The unused base of the test before goes, with its empty-overlay template.
    expect((await cache.collect(new Set([cache.pathFor(disk)]))).sort()).toEqual([expect.stringMatching(/\.overlay\.qcow2$/), expect.stringMatching(/\.raw$/)]);
  });

  it('leaves a base alone while a VM disk is being made on it, even when no VM records it yet', async () => {
    const data = randomBytes(2 * MiB);
    const { disk } = await store.writeDisk('os', once(data), data.length);
    const base = await cache.materialize(store, disk);
    await cache.createOverlay(base, join(dir, 'vm3.qcow2'));
    cache.pin(base);
    // A VM deleted elsewhere triggers a collection that sees no VM on this base: it must keep it.
    expect(await cache.collect(new Set())).toEqual([]);
    expect(statSync(base).size).toBe(data.length);
    cache.unpin(base);
    expect((await cache.collect(new Set())).sort()).toEqual([expect.stringMatching(/\.overlay\.qcow2$/), expect.stringMatching(/\.raw$/)]);
  });
});
