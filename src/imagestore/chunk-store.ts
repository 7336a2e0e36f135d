// Chunks and manifests on top of a blob driver: writing a raw disk stream as
// chunks, reading it back verified, and storing manifests. Format: index.ts.
import { createHash } from 'node:crypto';
import { chunkFault } from '../faults.js';
import type { BlobDriver, BlobInfo } from './blob-driver.js';
import { ImageStoreError } from './errors.js';
import { type BlockResult, sharedHashPool } from './hash-pool.js';
import { isPackKey, PackBuilder, type PackEntry, readPackIndex } from './packs.js';

export const DEFAULT_BLOCK_SIZE = 1 << 20;
export const MANIFEST_FORMAT = 'labforge-manifest/1';

export interface DiskManifest {
  name: string;
  virtualSize: number;
  blockSize: number;
  /** One entry per block: the chunk's SHA-256 in hex, or null for a block of zeros. Blocks past the end of the list are zeros. */
  blocks: Array<string | null>;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  disks: DiskManifest[];
}

export interface WriteStats {
  /** Bytes of the guest address space read. */
  bytesRead: number;
  /** Chunks this write added to the store (the rest were already there or zero). */
  chunksCreated: number;
  bytesCreated: number;
}

/** Fills `buf` with `length` bytes of the disk at `offset` and returns them, or null for a block known to be zero (a hole). */
export type ReadBlock = (offset: number, length: number, buf: Buffer) => Promise<Buffer | null>;

/** A raw disk file read at explicit offsets (on the hashing threads), with a test for ranges known to be holes. */
export interface BlockFile {
  path: string;
  isHole: (offset: number, length: number) => boolean;
}

const truncated = (end: number, virtualSize: number) =>
  new ImageStoreError('DiskTruncated', `The disk ends at ${end} bytes, before its declared virtual size of ${virtualSize} bytes.`);

const DIGEST = /^[0-9a-f]{64}$/;
export const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
export const chunkKey = (digest: string) => `chunks/${digest.slice(0, 2)}/${digest}`;

/** The distinct chunk digests a manifest refers to. */
export function manifestDigests(m: Manifest): string[] {
  const set = new Set<string>();
  for (const d of m.disks) for (const b of d.blocks) if (b) set.add(b);
  return [...set];
}

/** Where a chunk is: at an offset in a pack, or (stores written before packs) in a file of its own. */
export interface ChunkLocation {
  digest: string;
  /** The pack's key; undefined for a chunk file (`chunks/<aa>/<digest>`). */
  pack?: string;
  offset: number;
  length: number;
}

export interface PackInfo {
  key: string;
  entries: PackEntry[];
  /** When the pack was written, in ms since the epoch (garbage collection spares recent packs). */
  modifiedMs: number;
}

export interface ChunkStoreOptions {
  /** A pack is sealed (made durable and visible) once it holds this many bytes of chunks: 32 MiB by default. */
  packBytes?: number;
  /** ... or once it has been open this long, so a slow transfer keeps what arrived through a crash: 10 s by default. */
  packAgeMs?: number;
  /** The time in ms since the epoch (tests move it instead of sleeping): Date.now by default. */
  clock?: () => number;
}

export const DEFAULT_PACK_BYTES = 32 << 20;

/**
 * Block buffers kept between writes. Memory the process touches for the first time costs about 0.7 ms per
 * MiB here (a virtual machine faulting its pages in): 20-30 ms for a write's 32 buffers, a quarter of a small
 * capture. At most 64 MiB are kept.
 */
const spareBlocks: Buffer[] = [];
const SPARE_BYTES = 64 << 20;

function takeBlockBuffers(count: number, blockSize: number): Buffer[] {
  const out: Buffer[] = [];
  while (out.length < count && spareBlocks.length && blockSize === DEFAULT_BLOCK_SIZE) out.push(spareBlocks.pop() as Buffer);
  while (out.length < count) out.push(Buffer.from(new ArrayBuffer(blockSize)));
  return out;
}

function keepBlockBuffers(bufs: Buffer[], blockSize: number): void {
  if (blockSize !== DEFAULT_BLOCK_SIZE) return;
  for (const b of bufs) {
    if ((spareBlocks.length + 1) * blockSize > SPARE_BYTES) break;
    // Only buffers that own their memory whole go back (a hashing thread needs to take the whole ArrayBuffer).
    if (b.byteOffset === 0 && b.buffer.byteLength === blockSize) spareBlocks.push(b);
  }
  bufs.length = 0;
}

export class ChunkStore {
  private index: Map<string, ChunkLocation> | undefined;
  private loading: Promise<Map<string, ChunkLocation>> | undefined;
  private readonly packs = new Map<string, PackInfo>();
  /** Further copies of chunks held by more than one pack (two writers stored the same chunk at once, or a repack under way). */
  private readonly spares = new Map<string, ChunkLocation[]>();
  /** Packs listed in the store whose trailer cannot be read, with why. */
  private readonly unreadable = new Map<string, string>();
  /** Chunks a write found already stored, with when: garbage collection spares them as it spares new ones. */
  private readonly used = new Map<string, number>();
  readonly packBytes: number;
  readonly packAgeMs: number;
  /** Now, in ms since the epoch: what the grace period of garbage collection and the age of packs are measured by. */
  readonly now: () => number;

  constructor(
    readonly driver: BlobDriver,
    readonly region: string,
    opts: ChunkStoreOptions = {},
  ) {
    this.packBytes = opts.packBytes ?? DEFAULT_PACK_BYTES;
    this.packAgeMs = opts.packAgeMs ?? 10_000;
    this.now = opts.clock ?? Date.now;
  }

  /** Where every chunk is, read from the chunk files and the packs' trailers on first use and kept up to date by this store's writes. */
  async locations(): Promise<Map<string, ChunkLocation>> {
    if (this.index) return this.index;
    this.loading ??= (async () => {
      const index = new Map<string, ChunkLocation>();
      for await (const b of this.driver.list('chunks/')) {
        const digest = b.key.slice(b.key.lastIndexOf('/') + 1);
        if (DIGEST.test(digest)) index.set(digest, { digest, offset: 0, length: b.size });
      }
      await this.readPacks(index);
      this.index = index;
      return index;
    })().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  /**
   * Reads the trailers of listed packs not known yet (`all`: of every listed pack, as verify does to find
   * a trailer damaged since), a few at a time, and forgets packs no longer listed.
   */
  private async readPacks(index: Map<string, ChunkLocation>, all = false): Promise<void> {
    const listed: BlobInfo[] = [];
    for await (const b of this.driver.list('packs/')) if (isPackKey(b.key)) listed.push(b);
    const present = new Set(listed.map((b) => b.key));
    for (const key of [...this.packs.keys()]) if (!present.has(key)) this.dropPack(key, index);
    for (const key of [...this.unreadable.keys()]) if (!present.has(key)) this.unreadable.delete(key);
    const unknown = all ? listed : listed.filter((b) => !this.packs.has(b.key));
    let next = 0;
    const reader = async () => {
      while (next < unknown.length) {
        const b = unknown[next++] as BlobInfo;
        try {
          const entries = await readPackIndex(this.driver, b.key, b.size);
          if (this.packs.has(b.key)) this.dropPack(b.key, index);
          this.addPack({ key: b.key, entries, modifiedMs: b.modifiedMs ?? this.now() }, index);
          this.unreadable.delete(b.key);
        } catch (err) {
          if (!(err instanceof ImageStoreError)) throw err;
          if (this.packs.has(b.key)) this.dropPack(b.key, index);
          this.unreadable.set(b.key, err.message);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, reader));
  }

  /** Records a sealed pack; a chunk already located elsewhere keeps its location and the pack's copy is kept as a spare. */
  private addPack(info: PackInfo, index: Map<string, ChunkLocation>): void {
    this.packs.set(info.key, info);
    for (const e of info.entries) {
      const loc: ChunkLocation = { digest: e.digest, pack: info.key, offset: e.offset, length: e.length };
      if (!index.has(e.digest)) index.set(e.digest, loc);
      else this.spares.set(e.digest, [...(this.spares.get(e.digest) ?? []), loc]);
    }
  }

  /** Forgets a pack; its chunks that have a copy in another pack are found there from now on. */
  private dropPack(key: string, index: Map<string, ChunkLocation>): void {
    const info = this.packs.get(key);
    this.packs.delete(key);
    for (const e of info?.entries ?? []) this.unlocate(e.digest, key, index);
  }

  /** Forgets where a chunk is in `pack` (undefined: its own file); a copy in another pack takes over. */
  private unlocate(digest: string, pack: string | undefined, index: Map<string, ChunkLocation>): void {
    const spares = (this.spares.get(digest) ?? []).filter((l) => l.pack !== pack);
    if (index.has(digest) && index.get(digest)?.pack === pack) {
      const next = spares.shift();
      if (next) index.set(digest, next);
      else index.delete(digest);
    }
    if (spares.length) this.spares.set(digest, spares);
    else this.spares.delete(digest);
  }

  /**
   * Takes chunks out of the index at once, before their pack is rewritten or their file deleted: a write
   * from now on stores them anew instead of counting on them. Synchronous, so nothing runs between a
   * collector's decision and this. The index must be loaded.
   */
  forget(digests: Iterable<string>, pack?: string): void {
    if (!this.index) throw new Error('the chunk index is not loaded');
    for (const d of digests) this.unlocate(d, pack, this.index);
  }

  /** @internal A batch sealed a pack. */
  async packSealed(key: string, entries: PackEntry[]): Promise<void> {
    this.addPack({ key, entries, modifiedMs: this.now() }, await this.locations());
  }

  /**
   * Picks up packs another writer (an earlier process, a crash's survivors) added or removed since the index
   * was read; `rereadAll` also reads every known pack's trailer again (verify).
   */
  async refresh(rereadAll = false): Promise<void> {
    await this.readPacks(await this.locations(), rereadAll);
  }

  /** Every pack with its chunks, as this store knows them. */
  async packList(): Promise<PackInfo[]> {
    await this.locations();
    return [...this.packs.values()];
  }

  /** Packs whose trailer cannot be read, with the reason. */
  async unreadablePacks(): Promise<Map<string, string>> {
    await this.locations();
    return new Map(this.unreadable);
  }

  /** Stored chunks and their sizes, in packs and in chunk files. */
  async storedChunks(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [digest, loc] of await this.locations()) out.set(digest, loc.length);
    return out;
  }

  /** Notes that a write is about to refer to a stored chunk. */
  markUsed(digest: string): void {
    this.used.set(digest, this.now());
  }

  /** Whether a write referred to the chunk after `sinceMs`. */
  usedSince(digest: string, sinceMs: number): boolean {
    const at = this.used.get(digest);
    if (at === undefined) return false;
    if (at > sinceMs) return true;
    this.used.delete(digest);
    return false;
  }

  /** Forgets uses noted before `beforeMs` (garbage collection calls it once it has looked at them all). */
  forgetUsesBefore(beforeMs: number): void {
    for (const [digest, at] of this.used) if (at <= beforeMs) this.used.delete(digest);
  }

  /**
   * A new batch of chunk writes: packs are sealed as they fill, and `finish()` makes every chunk durable.
   * `replacing`: the pack a repack rewrites, whose chunks the batch stores again.
   */
  batch(opts: { replacing?: string } = {}): ChunkBatch {
    return new ChunkBatch(this, opts.replacing);
  }

  /** Stores one chunk under its hash (a pack of its own); returns the digest and whether it was new. */
  async putChunk(data: Uint8Array): Promise<{ digest: string; created: boolean }> {
    const digest = sha256(data);
    const batch = this.batch();
    const created = await batch.put(digest, data).catch(async (err) => {
      await batch.abort();
      throw err;
    });
    await batch.finish();
    return { digest, created };
  }

  /** Makes the names of what was written so far durable; call before writing a manifest that names them. */
  async flush(): Promise<void> {
    await this.driver.sync();
  }

  /**
   * SHA-256 of a chunk on the hashing threads (the main thread keeps I/O going); the bytes come back as a
   * new view. The buffer travels to a thread and back, so it is copied first unless the caller hands it over
   * (`consume`: a buffer this store read itself and owns whole).
   */
  async digestOf(data: Uint8Array, consume = false): Promise<{ digest: string; data: Buffer }> {
    const length = data.length;
    const owned = consume && data.byteOffset === 0 && data.buffer.byteLength === length;
    const own = owned ? Buffer.from(data.buffer, 0, length) : Buffer.from(data);
    const r = await sharedHashPool().block(own, length);
    const back = r.buf.subarray(0, length);
    // The threads report an all-zero block as null (such blocks are never stored): hash it here.
    return { digest: r.digest ?? sha256(back), data: back };
  }

  /** Stores one chunk that arrived from elsewhere, refusing it unless its bytes hash to the expected digest. */
  async putVerified(digest: string, received: Uint8Array): Promise<boolean> {
    const batch = this.batch();
    const created = await batch.putVerified(digest, received).catch(async (err) => {
      await batch.abort();
      throw err;
    });
    await batch.finish();
    return created;
  }

  async hasChunk(digest: string): Promise<boolean> {
    return (await this.locations()).has(digest);
  }

  /** A chunk's stored bytes, unchecked; undefined when its pack or file is gone. */
  async readLocation(loc: ChunkLocation): Promise<Buffer | undefined> {
    return loc.pack ? this.driver.getRange(loc.pack, loc.offset, loc.length) : this.driver.get(chunkKey(loc.digest));
  }

  /** Reads a chunk and checks its hash; a missing or corrupt chunk is an error naming it. */
  async getChunk(digest: string): Promise<Buffer> {
    if (!DIGEST.test(digest)) throw new ImageStoreError('ManifestCorrupt', `'${digest}' is not a chunk digest.`);
    let loc = (await this.locations()).get(digest);
    let data = loc && (await this.readLocation(loc));
    if (!data) {
      // Moved by garbage collection since it was looked up, or written by another process: look again.
      await this.refresh();
      loc = (await this.locations()).get(digest);
      data = loc && (await this.readLocation(loc));
    }
    if (!data) {
      throw new ImageStoreError(
        'ChunkMissing',
        `Chunk ${digest} is missing from region '${this.region}'. Run \`labforge store verify --region ${this.region}\` to repair it from another region.`,
      );
    }
    const checked = await this.digestOf(data, true);
    if (checked.digest !== digest) {
      throw new ImageStoreError(
        'ChunkCorrupt',
        `Chunk ${digest} in region '${this.region}' is corrupt (its content no longer matches its hash). Run \`labforge store verify --region ${this.region}\` to repair it from another region.`,
      );
    }
    return checked.data;
  }

  /** Deletes a pack, or a chunk file, and forgets what it held. */
  async removeBlob(loc: { pack?: string; digest?: string }): Promise<boolean> {
    const index = await this.locations();
    if (loc.pack) {
      const removed = await this.driver.delete(loc.pack);
      this.dropPack(loc.pack, index);
      this.unreadable.delete(loc.pack);
      return removed;
    }
    const digest = loc.digest as string;
    this.unlocate(digest, undefined, index);
    return this.driver.delete(chunkKey(digest));
  }

  /**
   * Rewrites a pack with only the given chunks (checked on the way) and removes the old one; what fails
   * its check is not copied and is returned. Garbage collection and repairs use it.
   */
  async repack(key: string, keep: PackEntry[]): Promise<{ corrupt: PackEntry[] }> {
    const corrupt: PackEntry[] = [];
    if (keep.length) {
      const batch = this.batch({ replacing: key });
      try {
        for (const e of keep) {
          const raw = await this.driver.getRange(key, e.offset, e.length);
          const checked = raw && (await this.digestOf(raw, true));
          if (!checked || checked.digest !== e.digest) corrupt.push(e);
          else await batch.put(e.digest, checked.data);
        }
      } catch (err) {
        await batch.abort();
        throw err;
      }
      await batch.finish();
    }
    await this.removeBlob({ pack: key });
    return { corrupt };
  }

  /**
   * Splits a raw disk stream into blocks and stores the non-zero ones.
   * The stream must yield exactly `virtualSize` bytes.
   */
  async writeDisk(
    name: string,
    source: AsyncIterable<Uint8Array>,
    virtualSize: number,
    opts: { blockSize?: number; onProgress?: (bytesRead: number) => void; signal?: AbortSignal } = {},
  ): Promise<{ disk: DiskManifest; stats: WriteStats }> {
    const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    const blocks: Array<string | null> = [];
    const stats: WriteStats = { bytesRead: 0, chunksCreated: 0, bytesCreated: 0 };
    const zero = Buffer.alloc(blockSize);
    let pending: Buffer[] = [];
    let pendingLength = 0;
    const inflight = new Set<Promise<void>>();
    const batch = this.batch();

    const storeBlock = async (block: Buffer, index: number) => {
      const zeroBlock = block.length === blockSize ? block.equals(zero) : block.equals(zero.subarray(0, block.length));
      if (zeroBlock) {
        blocks[index] = null;
        return;
      }
      const digest = sha256(block);
      const created = await batch.put(digest, block);
      await chunkFault();
      blocks[index] = digest;
      if (created) {
        stats.chunksCreated++;
        stats.bytesCreated += block.length;
      }
    };
    const schedule = async (block: Buffer) => {
      const index = blocks.length;
      blocks.push(null);
      // A few writes in flight overlap hashing with fsync waits.
      const p = storeBlock(block, index).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= 4) await Promise.race(inflight);
    };

    try {
      for await (const piece of source) {
        opts.signal?.throwIfAborted();
        let buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        stats.bytesRead += buf.length;
        if (stats.bytesRead > virtualSize) {
          throw new ImageStoreError('DiskSizeMismatch', `The disk content is longer than its declared virtual size of ${virtualSize} bytes.`);
        }
        while (pendingLength + buf.length >= blockSize) {
          const need = blockSize - pendingLength;
          pending.push(buf.subarray(0, need));
          buf = buf.subarray(need);
          const block = pending.length === 1 ? Buffer.from(pending[0] as Buffer) : Buffer.concat(pending, blockSize);
          pending = [];
          pendingLength = 0;
          await schedule(block);
        }
        if (buf.length) {
          pending.push(Buffer.from(buf));
          pendingLength += buf.length;
        }
        opts.onProgress?.(stats.bytesRead);
      }
      if (pendingLength) await schedule(Buffer.concat(pending, pendingLength));
      await Promise.all(inflight);
      if (stats.bytesRead !== virtualSize) {
        throw new ImageStoreError('DiskSizeMismatch', `The disk content is ${stats.bytesRead} bytes but its declared virtual size is ${virtualSize} bytes.`);
      }
    } catch (err) {
      await Promise.allSettled(inflight);
      await batch.abort();
      throw err;
    }
    await batch.finish();
    if (stats.bytesRead !== virtualSize) {
      throw new ImageStoreError('DiskSizeMismatch', `The disk content is ${stats.bytesRead} bytes but its declared virtual size is ${virtualSize} bytes.`);
    }
    while (blocks.length && blocks[blocks.length - 1] === null) blocks.pop();
    return { disk: { name, virtualSize, blockSize, blocks }, stats };
  }

  /**
   * Stores a disk read block by block at explicit offsets. `source` is either
   * a function that fills the buffer it is given (reused between blocks) and
   * returns the bytes, or null for a block it knows is zero without reading it
   * (a hole); or a file with a hole test, whose blocks are then read on the
   * hashing threads. Zero blocks are not stored.
   */
  async writeBlocks(
    name: string,
    virtualSize: number,
    source: ReadBlock | BlockFile,
    opts: {
      blockSize?: number;
      concurrency?: number;
      onProgress?: (bytesDone: number) => void;
      signal?: AbortSignal;
      /** Visit only these block indices, in this order (the others stay null): a capture reads just the changed blocks. */
      only?: number[];
    } = {},
  ): Promise<{ disk: DiskManifest; stats: WriteStats }> {
    const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    const count = Math.ceil(virtualSize / blockSize);
    const visit = opts.only ?? null;
    const blocks: Array<string | null> = new Array(count).fill(null);
    const stats: WriteStats = { bytesRead: 0, chunksCreated: 0, bytesCreated: 0 };
    // Buffers in use at once: reading (or queued for a hashing thread) and waiting on chunk writes.
    // Memory stays at slots × blockSize (32 MiB by default).
    const slots = Math.max(2, opts.concurrency ?? Math.max(8, Math.min(64, Math.floor((32 << 20) / blockSize))));
    const free = takeBlockBuffers(slots, blockSize);
    let waiter: (() => void) | undefined;
    const release = (buf: Buffer) => {
      free.push(buf);
      waiter?.();
      waiter = undefined;
    };
    const pool = sharedHashPool();
    const batch = this.batch();
    const inflight = new Set<Promise<void>>();
    let failure: { err: unknown } | undefined;
    let done = 0;
    let visited = 0;

    const storeBlock = async (index: number, buf: Buffer, ordinal: number): Promise<void> => {
      const offset = index * blockSize;
      const length = Math.min(blockSize, virtualSize - offset);
      let result: BlockResult;
      if (typeof source === 'function') {
        const data = await source(offset, length, buf);
        if (data === null) {
          release(buf);
          done += length;
          opts.onProgress?.(done);
          return;
        }
        if (data.length !== length) {
          release(buf);
          throw truncated(offset + data.length, virtualSize);
        }
        // The buffer goes to a hashing thread and back: bytes returned from elsewhere are copied into it first.
        if (data.buffer !== buf.buffer || data.byteOffset !== 0) buf.set(data);
        result = await pool.block(buf, length);
      } else {
        // Runs of 4 blocks read per thread: each thread reads its file sequentially in 4 MiB stretches. Runs are
        // counted over the blocks read, not the disk's address space, so threads share the work evenly however
        // the data lies between holes.
        result = await pool.block(buf, length, { path: source.path, offset }, Math.floor(ordinal / 4));
        if (result.bytes !== length) {
          release(result.buf);
          throw truncated(offset + result.bytes, virtualSize);
        }
      }
      try {
        stats.bytesRead += length;
        if (result.digest !== null) {
          const created = await batch.put(result.digest, result.buf.subarray(0, length));
          await chunkFault();
          blocks[index] = result.digest;
          if (created) {
            stats.chunksCreated++;
            stats.bytesCreated += length;
          }
        }
      } finally {
        release(result.buf);
      }
      done += length;
      opts.onProgress?.(done);
    };

    try {
      const total = visit ? visit.length : count;
      for (let i = 0; i < total && !failure; i++) {
        const index = visit ? (visit[i] as number) : i;
        opts.signal?.throwIfAborted();
        if (typeof source !== 'function') {
          const offset = index * blockSize;
          const length = Math.min(blockSize, virtualSize - offset);
          if (source.isHole(offset, length)) {
            done += length;
            opts.onProgress?.(done);
            continue;
          }
        }
        while (!free.length && !failure) await new Promise<void>((r) => (waiter = r));
        if (failure) break;
        const buf = free.pop() as Buffer;
        const p: Promise<void> = storeBlock(index, buf, visited++)
          .catch((err) => {
            failure ??= { err };
            waiter?.();
          })
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.all(inflight);
    } catch (err) {
      failure ??= { err };
    } finally {
      await Promise.all(inflight);
      if (typeof source !== 'function') await pool.release([source.path]);
      keepBlockBuffers(free, blockSize);
    }
    if (failure) {
      await batch.abort();
      throw failure.err;
    }
    await batch.finish();
    while (blocks.length && blocks[blocks.length - 1] === null) blocks.pop();
    return { disk: { name, virtualSize, blockSize, blocks }, stats };
  }

  /** Streams a disk's raw content, block by block, verifying every chunk. */
  async *readDisk(disk: DiskManifest): AsyncIterable<Buffer> {
    const zero = Buffer.alloc(disk.blockSize);
    const count = Math.ceil(disk.virtualSize / disk.blockSize);
    for (let i = 0; i < count; i++) {
      const length = Math.min(disk.blockSize, disk.virtualSize - i * disk.blockSize);
      const digest = disk.blocks[i];
      if (digest === null || digest === undefined) {
        yield length === disk.blockSize ? zero : zero.subarray(0, length);
        continue;
      }
      const data = await this.getChunk(digest);
      if (data.length !== length) {
        throw new ImageStoreError('ManifestCorrupt', `Block ${i} of disk '${disk.name}' should be ${length} bytes but its chunk ${digest} has ${data.length}.`);
      }
      yield data;
    }
  }

  async putManifest(name: string, manifest: Manifest): Promise<void> {
    await this.flush();
    await this.driver.put(`manifests/${name}.json`, Buffer.from(JSON.stringify(manifest)), { overwrite: true });
  }

  async getManifest(name: string): Promise<Manifest | undefined> {
    const data = await this.driver.get(`manifests/${name}.json`);
    if (!data) return undefined;
    const m = JSON.parse(data.toString('utf8')) as Manifest;
    if (m.format !== MANIFEST_FORMAT)
      throw new ImageStoreError('ManifestCorrupt', `Manifest '${name}' in region '${this.region}' has unknown format '${m.format}'.`);
    return m;
  }

  async hasManifest(name: string): Promise<boolean> {
    return (await this.driver.stat(`manifests/${name}.json`)) !== undefined;
  }

  async deleteManifest(name: string): Promise<boolean> {
    return this.driver.delete(`manifests/${name}.json`);
  }
}

/**
 * Chunk writes that end together: chunks go into packs written as they come,
 * each sealed (synced, named, added to the index) when full or old enough;
 * `finish()` seals the last one and makes the names durable. Chunks of a batch
 * that fails and is aborted are not stored (what was sealed already stays, to
 * be collected as garbage if nothing refers to it).
 */
export class ChunkBatch {
  private current: PackBuilder | undefined;
  private readonly seals: Promise<void>[] = [];
  private readonly mine = new Set<string>();
  constructor(
    private readonly store: ChunkStore,
    /** The pack a repack replaces: its chunks count as absent. */
    private readonly replacing?: string,
  ) {}

  /** Stores a chunk whose digest the caller computed; false when the store, or this batch, has it already. */
  async put(digest: string, data: Uint8Array): Promise<boolean> {
    const existing = (await this.store.locations()).get(digest);
    if ((existing && existing.pack !== this.replacing) || this.mine.has(digest)) {
      this.store.markUsed(digest);
      return false;
    }
    this.mine.add(digest);
    if (!this.current) this.current = new PackBuilder(this.store.driver);
    const pack = this.current;
    const written = pack.add(digest, data);
    if (pack.size >= this.store.packBytes || Date.now() - pack.started >= this.store.packAgeMs) this.seal();
    await written;
    return true;
  }

  /** Stores a chunk that arrived from elsewhere, refusing it unless its bytes hash to the expected digest. */
  async putVerified(digest: string, received: Uint8Array): Promise<boolean> {
    if (this.mine.has(digest) || (await this.store.hasChunk(digest))) return this.put(digest, received);
    const { digest: actual, data } = await this.store.digestOf(received);
    if (actual !== digest) {
      throw new ImageStoreError(
        'ChunkCorrupt',
        `A chunk sent to region '${this.store.region}' as ${digest} has content hashing to ${actual}; it was refused and nothing was stored.`,
      );
    }
    return this.put(digest, data);
  }

  private seal(): void {
    const pack = this.current;
    if (!pack) return;
    this.current = undefined;
    const sealed = pack.seal().then(
      (entries) => this.store.packSealed(pack.key, entries),
      async (err) => {
        await pack.abort().catch(() => undefined);
        throw err;
      },
    );
    // finish() reports a failure; this keeps it from counting as unhandled meanwhile.
    sealed.catch(() => undefined);
    this.seals.push(sealed);
  }

  /** Seals what is left and makes every chunk of the batch durable under its name. */
  async finish(): Promise<void> {
    this.seal();
    await Promise.all(this.seals);
    await this.store.flush();
  }

  /** Drops the pack being filled; packs already sealed stay. */
  async abort(): Promise<void> {
    const pack = this.current;
    this.current = undefined;
    await pack?.abort().catch(() => undefined);
    await Promise.allSettled(this.seals);
  }
}
