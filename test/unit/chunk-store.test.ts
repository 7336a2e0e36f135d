// The chunk store: zero blocks are not stored, identical blocks are stored
// once, content reads back exactly, and corruption is detected, not served.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChunkStore, sha256 } from '../../src/imagestore/chunk-store.js';
import { LocalBlobDriver } from '../../src/imagestore/drivers/local.driver.js';
import { corruptChunk, removeChunk, storedChunks } from '../helpers/images.js';

const MiB = 1 << 20;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const newStore = () => {
  const dir = mkdtempSync(join(tmpdir(), 'labforge-chunks-'));
  dirs.push(dir);
  return { dir, store: new ChunkStore(new LocalBlobDriver(dir), 'site-a') };
};
/** Yields `buf` in pieces of irregular sizes, as a network or pipe would. */
async function* pieces(buf: Buffer, sizes = [1000, 65536, 333333, 7]) {
  let off = 0;
  let i = 0;
  while (off < buf.length) {
    const n = sizes[i++ % sizes.length] as number;
    yield buf.subarray(off, off + n);
    off += n;
  }
}
const readAll = async (it: AsyncIterable<Buffer>) => {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
};

describe('chunk store', () => {
  it('stores non-zero blocks once, skips zero blocks, and reads the disk back exactly', async () => {
    const { dir, store } = newStore();
    const a = randomBytes(MiB);
    const b = randomBytes(MiB);
    // blocks: a, zero, b, a (duplicate), zero, and a short tail of 300 KiB
    const tail = randomBytes(300 * 1024);
    const disk = Buffer.concat([a, Buffer.alloc(MiB), b, a, Buffer.alloc(MiB), tail]);
    const { disk: m, stats } = await store.writeDisk('os', pieces(disk), disk.length);
    expect(m.blocks).toEqual([sha256(a), null, sha256(b), sha256(a), null, sha256(tail)]);
    expect(stats).toEqual({ bytesRead: disk.length, chunksCreated: 3, bytesCreated: 2 * MiB + tail.length });
    expect([...(await storedChunks(dir)).keys()].sort()).toEqual([sha256(a), sha256(b), sha256(tail)].sort());
    expect(Buffer.compare(await readAll(store.readDisk(m)), disk)).toBe(0);
    // Writing the same disk again adds nothing.
    const again = await store.writeDisk('os', pieces(disk, [MiB]), disk.length);
    expect(again.stats.chunksCreated).toBe(0);
    expect(again.disk.blocks).toEqual(m.blocks);
  });

  it('stores only the changed blocks of a new version', async () => {
    const { store } = newStore();
    const v1 = randomBytes(8 * MiB);
    await store.writeDisk('os', pieces(v1), v1.length);
    const v2 = Buffer.from(v1);
    randomBytes(2 * MiB).copy(v2, 3 * MiB);
    const { stats } = await store.writeDisk('os', pieces(v2), v2.length);
    expect(stats.chunksCreated).toBe(2);
    expect(stats.bytesCreated).toBe(2 * MiB);
  });

  it('refuses a stream whose length differs from the declared virtual size', async () => {
    const { store } = newStore();
    const data = randomBytes(2 * MiB);
    await expect(store.writeDisk('os', pieces(data), 3 * MiB)).rejects.toMatchObject({ code: 'DiskSizeMismatch' });
    await expect(store.writeDisk('os', pieces(data), MiB)).rejects.toMatchObject({ code: 'DiskSizeMismatch' });
  });

  it('detects a corrupt or missing chunk instead of serving it', async () => {
    const { dir, store } = newStore();
    const data = randomBytes(2 * MiB);
    const { disk } = await store.writeDisk('os', pieces(data), data.length);
    const victim = disk.blocks[1] as string;
    await corruptChunk(dir, victim);
    await expect(readAll(store.readDisk(disk))).rejects.toMatchObject({ code: 'ChunkCorrupt' });
    await expect(store.getChunk(victim)).rejects.toThrow(victim);
    // The other chunk of the same pack still reads.
    expect((await store.getChunk(disk.blocks[0] as string)).equals(data.subarray(0, MiB))).toBe(true);
    await removeChunk(dir, victim);
    await expect(store.getChunk(victim)).rejects.toMatchObject({ code: 'ChunkMissing' });
    expect((await store.getChunk(disk.blocks[0] as string)).equals(data.subarray(0, MiB))).toBe(true);
  });

  it('refuses a replicated chunk whose bytes do not match its name, storing nothing', async () => {
    const { store } = newStore();
    const data = randomBytes(4096);
    await expect(store.putVerified(sha256(Buffer.from('other')), data)).rejects.toMatchObject({ code: 'ChunkCorrupt' });
    expect(await store.hasChunk(sha256(Buffer.from('other')))).toBe(false);
    expect(await store.putVerified(sha256(data), data)).toBe(true);
    expect(await store.hasChunk(sha256(data))).toBe(true);
  });

  it('writes manifests as the last, replaceable record and reads them back', async () => {
    const { store } = newStore();
    const data = randomBytes(MiB + 5);
    const { disk } = await store.writeDisk('os', pieces(data), data.length);
    expect(await store.getManifest('v1')).toBeUndefined();
    await store.putManifest('v1', { format: 'labforge-manifest/1', disks: [disk] });
    expect((await store.getManifest('v1'))?.disks[0]?.blocks).toEqual(disk.blocks);
    expect(await store.deleteManifest('v1')).toBe(true);
    expect(await store.getManifest('v1')).toBeUndefined();
  });
});
