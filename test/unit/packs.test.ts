// Pack files: chunks are stored many to a pack, a pack is visible only once
// sealed whole, garbage collection rewrites packs that hold unreferenced
// chunks, and verify sets aside a pack whose index is damaged and repairs its
// chunks from another region.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChunkStore, type DiskManifest, MANIFEST_FORMAT, sha256 } from '../../src/imagestore/chunk-store.js';
import { LocalBlobDriver } from '../../src/imagestore/drivers/local.driver.js';
import { collectGarbage, verifyRegion } from '../../src/imagestore/maintenance.js';
import { readAllDisk, storedChunks } from '../helpers/images.js';

const MiB = 1 << 20;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
/** The stores' clock: tests move it forward instead of sleeping past a grace period. */
let offset = 0;
const clock = () => Date.now() + offset;
const later = (ms: number) => {
  offset += ms;
};
const region = (name: string, packBytes = 2 * MiB) => {
  const dir = mkdtempSync(join(tmpdir(), `labforge-packs-${name}-`));
  dirs.push(dir);
  return { dir, store: new ChunkStore(new LocalBlobDriver(dir), name, { packBytes, clock }) };
};
async function* once(buf: Buffer) {
  yield buf;
}
const files = (dir: string) =>
  existsSync(dir)
    ? readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name))
    : [];
const packFiles = (dir: string) => files(join(dir, 'packs'));
const store = async (s: ChunkStore, name: string, data: Buffer): Promise<DiskManifest> => {
  const { disk } = await s.writeDisk('os', once(data), data.length);
  await s.putManifest(name, { format: MANIFEST_FORMAT, disks: [disk] });
  return disk;
};

describe('pack files', () => {
  it('stores chunks in packs of the configured size that read back exactly, here and from a fresh start', async () => {
    const { dir, store: s } = region('a');
    const data = randomBytes(5 * MiB);
    const disk = await store(s, 'v1', data);
    // 2 MiB packs: 2 + 2 + 1 chunks.
    expect(packFiles(dir)).toHaveLength(3);
    expect(files(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect((await readAllDisk(s, disk)).equals(data)).toBe(true);
    const fresh = new ChunkStore(new LocalBlobDriver(dir), 'a');
    expect((await readAllDisk(fresh, disk)).equals(data)).toBe(true);
    expect([...(await storedChunks(dir)).values()]).toEqual([MiB, MiB, MiB, MiB, MiB]);
  });

  it('shows nothing of a batch cut off before it finished, and leaves only a temporary file to clean up', async () => {
    const { dir, store: s } = region('a', 8 * MiB);
    const batch = s.batch();
    const chunks = [randomBytes(MiB), randomBytes(MiB)];
    for (const c of chunks) expect(await batch.put(sha256(c), c)).toBe(true);
    // As after a crash: another process looks at the directory.
    const after = new ChunkStore(new LocalBlobDriver(dir), 'a');
    expect(await after.storedChunks()).toEqual(new Map());
    expect(packFiles(dir).filter((f) => !f.includes('.tmp-'))).toEqual([]);
    expect(await after.driver.cleanupTemporary(0)).toBe(1);
    expect(files(dir)).toEqual([]);
    await batch.abort();
    // An aborted batch leaves nothing either.
    const again = s.batch();
    await again.put(sha256(chunks[0] as Buffer), chunks[0] as Buffer);
    await again.abort();
    expect(files(dir)).toEqual([]);
  });

  it('stores a chunk once when two writers bring it at the same time, and reads it after collection drops the copy', async () => {
    const { store: s } = region('a');
    const chunk = randomBytes(MiB);
    const [one, two] = [s.batch(), s.batch()];
    await Promise.all([one.put(sha256(chunk), chunk), two.put(sha256(chunk), chunk)]);
    await Promise.all([one.finish(), two.finish()]);
    expect(await s.packList()).toHaveLength(2);
    await s.putManifest('v1', { format: MANIFEST_FORMAT, disks: [{ name: 'os', virtualSize: MiB, blockSize: MiB, blocks: [sha256(chunk)] }] });
    const gc = await collectGarbage(s, 0);
    expect(gc).toMatchObject({ chunksKept: 1, chunksRemoved: 1, bytesFreed: MiB });
    expect(await s.packList()).toHaveLength(1);
    expect((await s.getChunk(sha256(chunk))).equals(chunk)).toBe(true);
  });

  it('rewrites a pack holding chunks nobody refers to any more, keeping the ones still in use', async () => {
    const { dir, store: s } = region('a', 4 * MiB);
    const v1 = randomBytes(4 * MiB);
    await store(s, 'v1', v1);
    // v2 keeps v1's first two blocks and changes the other two.
    const v2 = Buffer.concat([v1.subarray(0, 2 * MiB), randomBytes(2 * MiB)]);
    const d2 = await store(s, 'v2', v2);
    expect(packFiles(dir)).toHaveLength(2);
    // Within the grace period nothing goes.
    expect(await collectGarbage(s, 60_000)).toMatchObject({ chunksKept: 6, chunksRemoved: 0, chunksInGrace: 0 });
    await s.deleteManifest('v1');
    expect(await collectGarbage(s, 60_000)).toMatchObject({ chunksRemoved: 0, chunksInGrace: 2 });
    const before = packFiles(dir).reduce((n, f) => n + statSync(f).size, 0);
    const gc = await collectGarbage(s, 0);
    expect(gc).toMatchObject({ chunksKept: 4, chunksRemoved: 2, bytesFreed: 2 * MiB, packsRewritten: 1 });
    expect(before - packFiles(dir).reduce((n, f) => n + statSync(f).size, 0)).toBe(2 * MiB);
    expect((await readAllDisk(s, d2)).equals(v2)).toBe(true);
    expect((await readAllDisk(new ChunkStore(new LocalBlobDriver(dir), 'a'), d2)).equals(v2)).toBe(true);
    // Deleting the last version empties the store.
    await s.deleteManifest('v2');
    expect(await collectGarbage(s, 0)).toMatchObject({ chunksRemoved: 4, bytesFreed: 4 * MiB });
    expect(packFiles(dir)).toEqual([]);
  });

  it('spares a chunk a new write found already stored, even when nothing refers to it yet', async () => {
    const { store: s } = region('a');
    const [chunk, other] = [randomBytes(MiB), randomBytes(MiB)];
    await s.putChunk(chunk);
    await s.putChunk(other);
    // Both written longer ago than the grace period (a minute)...
    later(2 * 60_000);
    const batch = s.batch();
    // ...but an import about to refer to one of them finds it stored.
    expect(await batch.put(sha256(chunk), chunk)).toBe(false);
    await batch.finish();
    expect(await collectGarbage(s, 60_000)).toMatchObject({ chunksRemoved: 1, chunksInGrace: 1 });
    expect(await s.hasChunk(sha256(chunk))).toBe(true);
    expect(await s.hasChunk(sha256(other))).toBe(false);
  });

  it('keeps a chunk a write brings while collection is removing it from its pack', async () => {
    const { dir, store: s } = region('a', 4 * MiB);
    const [kept, orphan] = [randomBytes(MiB), randomBytes(MiB)];
    const batch0 = s.batch();
    await batch0.put(sha256(kept), kept);
    await batch0.put(sha256(orphan), orphan);
    await batch0.finish();
    await s.putManifest('v1', { format: MANIFEST_FORMAT, disks: [{ name: 'os', virtualSize: MiB, blockSize: MiB, blocks: [sha256(kept)] }] });
    later(2 * 60_000);
    // An import arrives with the unreferenced chunk just after collection decided to drop it.
    const late = s.batch();
    let brought: boolean | undefined;
    const repack = s.repack.bind(s);
    s.repack = async (key, keep) => {
      brought = await late.put(sha256(orphan), orphan);
      return repack(key, keep);
    };
    expect(await collectGarbage(s, 60_000)).toMatchObject({ chunksRemoved: 1, packsRewritten: 1 });
    await late.finish();
    // The write did not count on the copy being removed: it stored the chunk again.
    expect(brought).toBe(true);
    expect((await s.getChunk(sha256(orphan))).equals(orphan)).toBe(true);
    expect((await new ChunkStore(new LocalBlobDriver(dir), 'a').getChunk(sha256(orphan))).equals(orphan)).toBe(true);
  });

  it('sets aside a pack whose index is damaged and repairs its chunks from another region', async () => {
    const a = region('a', 4 * MiB);
    const b = region('b', 4 * MiB);
    const data = randomBytes(3 * MiB);
    const disk = await store(a.store, 'v1', data);
    await store(b.store, 'v1', data);
    const [pack] = packFiles(a.dir) as [string];
    // A torn end: the trailer is gone.
    truncateSync(pack, statSync(pack).size - 4096);
    const fresh = new ChunkStore(new LocalBlobDriver(a.dir), 'a');
    await expect(fresh.getChunk(disk.blocks[0] as string)).rejects.toMatchObject({ code: 'ChunkMissing' });
    const report = await verifyRegion(fresh, [b.store]);
    expect(report.packsUnreadable).toEqual([pack.slice(a.dir.length + 1)]);
    expect(report.missing.sort()).toEqual([...(disk.blocks as string[])].sort());
    expect(report.repaired).toHaveLength(3);
    expect(existsSync(join(a.dir, 'quarantine', `${pack.slice(pack.lastIndexOf('/') + 1)}.bad`))).toBe(true);
    expect((await readAllDisk(fresh, disk)).equals(data)).toBe(true);
    expect(await verifyRegion(fresh, [b.store])).toMatchObject({ corrupt: [], missing: [], packsUnreadable: [] });
  });

  it('quarantines one corrupt chunk of a pack and keeps the others', async () => {
    const a = region('a', 4 * MiB);
    const b = region('b', 4 * MiB);
    const data = randomBytes(3 * MiB);
    const disk = await store(a.store, 'v1', data);
    await store(b.store, 'v1', data);
    const victim = disk.blocks[1] as string;
    const loc = (await a.store.locations()).get(victim);
    if (!loc?.pack) throw new Error('the chunk is not in a pack');
    const fd = openSync(join(a.dir, ...loc.pack.split('/')), 'r+');
    writeSync(fd, randomBytes(10), 0, 10, loc.offset + 1000);
    closeSync(fd);
    const report = await verifyRegion(a.store, [b.store]);
    expect(report).toMatchObject({ corrupt: [victim], missing: [], repaired: [victim], unrepairable: [] });
    expect(existsSync(join(a.dir, 'quarantine', `${victim}.bad`))).toBe(true);
    // The pack was rewritten without it and the repair went into a new one.
    expect((await a.store.packList()).flatMap((p) => p.entries.map((e) => e.digest)).sort()).toEqual([...(disk.blocks as string[])].sort());
    expect((await readAllDisk(a.store, disk)).equals(data)).toBe(true);
  });
});
