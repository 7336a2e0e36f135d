// Chunks and manifests on top of a blob driver: writing a raw disk stream as
// chunks, reading it back verified, and storing manifests. Format: index.ts.
import { createHash } from 'node:crypto';
import { LabforgeError } from '../errors.js';
import { chunkFault } from '../faults.js';
import type { BlobDriver } from './blob-driver.js';
import { type BlockResult, sharedHashPool } from './hash-pool.js';

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
  new LabforgeError(400, 'DiskTruncated', `The disk ends at ${end} bytes, before its declared virtual size of ${virtualSize} bytes.`);

const DIGEST = /^[0-9a-f]{64}$/;
export const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
export const chunkKey = (digest: string) => `chunks/${digest.slice(0, 2)}/${digest}`;

/** The distinct chunk digests a manifest refers to. */
export function manifestDigests(m: Manifest): string[] {
  const set = new Set<string>();
  for (const d of m.disks) for (const b of d.blocks) if (b) set.add(b);
  return [...set];
}

export class ChunkStore {
  constructor(
    readonly driver: BlobDriver,
    readonly region: string,
  ) {}

  /** Stores a chunk under its hash; returns the digest and whether it was new. */
  async putChunk(data: Uint8Array): Promise<{ digest: string; created: boolean }> {
    const digest = sha256(data);
    const created = await this.driver.put(chunkKey(digest), data, { batch: true });
    return { digest, created };
  }

  /** Makes every chunk put so far durable under its name; call before writing a manifest that names them. */
  async flush(): Promise<void> {
    await this.driver.sync();
  }

  /**
   * SHA-256 of a chunk on the hashing threads (the main thread keeps I/O going); the bytes come back as a
   * new view. The buffer travels to a thread and back, so it is copied first unless the caller hands it over
   * (`consume`: a buffer this store read itself and owns whole).
   */
  private async digestOf(data: Uint8Array, consume = false): Promise<{ digest: string; data: Buffer }> {
    const length = data.length;
    const owned = consume && data.byteOffset === 0 && data.buffer.byteLength === length;
    const own = owned ? Buffer.from(data.buffer, 0, length) : Buffer.from(data);
    const r = await sharedHashPool().block(own, length);
    const back = r.buf.subarray(0, length);
    // The threads report an all-zero block as null (such blocks are never stored): hash it here.
    return { digest: r.digest ?? sha256(back), data: back };
  }

  /** Stores a chunk that arrived from elsewhere, refusing it unless its bytes hash to the expected digest. */
  async putVerified(digest: string, received: Uint8Array): Promise<boolean> {
    const { digest: actual, data } = await this.digestOf(received);
    if (actual !== digest) {
      throw new LabforgeError(
        502,
        'ChunkCorrupt',
        `A chunk sent to region '${this.region}' as ${digest} has content hashing to ${actual}; it was refused and nothing was stored.`,
      );
    }
    return this.driver.put(chunkKey(digest), data, { batch: true });
  }

  async hasChunk(digest: string): Promise<boolean> {
    return (await this.driver.stat(chunkKey(digest))) !== undefined;
  }

  /** Reads a chunk and checks its hash; a missing or corrupt chunk is an error naming it. */
  async getChunk(digest: string): Promise<Buffer> {
    if (!DIGEST.test(digest)) throw new LabforgeError(500, 'ManifestCorrupt', `'${digest}' is not a chunk digest.`);
    const data = await this.driver.get(chunkKey(digest));
    if (!data) {
      throw new LabforgeError(
        500,
        'ChunkMissing',
        `Chunk ${digest} is missing from region '${this.region}'. Run \`labforge store verify --region ${this.region}\` to repair it from another region.`,
      );
    }
    const checked = await this.digestOf(data, true);
    if (checked.digest !== digest) {
      throw new LabforgeError(
        500,
        'ChunkCorrupt',
        `Chunk ${digest} in region '${this.region}' is corrupt (its content no longer matches its hash). Run \`labforge store verify --region ${this.region}\` to repair it from another region.`,
      );
    }
    return checked.data;
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

    const storeBlock = async (block: Buffer, index: number) => {
      const zeroBlock = block.length === blockSize ? block.equals(zero) : block.equals(zero.subarray(0, block.length));
      if (zeroBlock) {
        blocks[index] = null;
        return;
      }
      const { digest, created } = await this.putChunk(block);
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

    for await (const piece of source) {
      opts.signal?.throwIfAborted();
      let buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      stats.bytesRead += buf.length;
      if (stats.bytesRead > virtualSize) {
        throw new LabforgeError(400, 'DiskSizeMismatch', `The disk content is longer than its declared virtual size of ${virtualSize} bytes.`);
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
    await this.flush();
    if (stats.bytesRead !== virtualSize) {
      throw new LabforgeError(400, 'DiskSizeMismatch', `The disk content is ${stats.bytesRead} bytes but its declared virtual size is ${virtualSize} bytes.`);
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
    const free: Buffer[] = [];
    for (let i = 0; i < slots; i++) free.push(Buffer.from(new ArrayBuffer(blockSize)));
    let waiter: (() => void) | undefined;
    const release = (buf: Buffer) => {
      free.push(buf);
      waiter?.();
      waiter = undefined;
    };
    const pool = sharedHashPool();
    const inflight = new Set<Promise<void>>();
    let failure: { err: unknown } | undefined;
    let done = 0;

    const storeBlock = async (index: number, buf: Buffer): Promise<void> => {
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
        // Runs of 4 blocks per thread: each thread reads its file sequentially in 4 MiB stretches.
        result = await pool.block(buf, length, { path: source.path, offset }, Math.floor(index / 4));
        if (result.bytes !== length) {
          release(result.buf);
          throw truncated(offset + result.bytes, virtualSize);
        }
      }
      try {
        stats.bytesRead += length;
        if (result.digest !== null) {
          const created = await this.driver.put(chunkKey(result.digest), result.buf.subarray(0, length), { batch: true });
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
        const p: Promise<void> = storeBlock(index, buf)
          .catch((err) => {
            failure ??= { err };
            waiter?.();
          })
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.all(inflight);
    } finally {
      await Promise.all(inflight);
      if (typeof source !== 'function') await pool.release([source.path]);
    }
    if (failure) throw failure.err;
    await this.flush();
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
        throw new LabforgeError(
          500,
          'ManifestCorrupt',
          `Block ${i} of disk '${disk.name}' should be ${length} bytes but its chunk ${digest} has ${data.length}.`,
        );
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
      throw new LabforgeError(500, 'ManifestCorrupt', `Manifest '${name}' in region '${this.region}' has unknown format '${m.format}'.`);
    return m;
  }

  async hasManifest(name: string): Promise<boolean> {
    return (await this.driver.stat(`manifests/${name}.json`)) !== undefined;
  }

  async deleteManifest(name: string): Promise<boolean> {
    return this.driver.delete(`manifests/${name}.json`);
  }
}
