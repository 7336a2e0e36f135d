// The `local` blob driver: blobs are files under one directory. A write goes
// to a temporary file in the target directory, is fsynced, then linked (or,
// to overwrite, renamed) to its name, and the directory is fsynced, so a crash
// leaves either the old state or the complete new blob, plus at most a
// temporary file that cleanupTemporary() removes. Large blobs (packs of
// chunks) are written with direct I/O where the filesystem takes it.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { exhaustionMessage, exhaustionOf } from '../../lib/exhaustion.js';
import { type BlobDriver, type BlobInfo, type BlobWriter, checkKey, type PutOptions } from '../blob-driver.js';
import { DIRECT_ALIGN, DirectWrites } from '../direct-io.js';
import { ImageStoreError } from '../errors.js';

const TMP_PREFIX = '.tmp-';

async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

const isNotFound = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** Blobs from this size on are written with direct I/O. */
const DIRECT_MIN = 64 << 10;

export class LocalBlobDriver implements BlobDriver {
  readonly kind = 'local';
  private readonly madeDirs = new Set<string>();
  /** Large blobs go with direct I/O where the filesystem takes it. */
  private readonly direct = new DirectWrites();
  /** Directories with entries created by batched puts and not yet fsynced. */
  private readonly unsyncedDirs = new Set<string>();
  /** Directories created by batched puts whose own entries wait for sync(). */
  private readonly deferredDirs = new Set<string>();

  constructor(
    readonly root: string,
    /** The region this driver stores, named in errors (a full disk says which region is full). */
    private readonly region?: string,
  ) {}

  /** Runs a write; a full disk, too many open files or no memory become named ImageStoreErrors saying where and what to do. */
  private async writing<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = exhaustionOf(err);
      if (!code) throw err;
      const doing = `${this.region ? `Region '${this.region}'` : 'The image store'} could not store ${key}`;
      throw new ImageStoreError(code, await exhaustionMessage(code, doing, this.root));
    }
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  /**
   * Creates a directory and makes its entry durable. With `defer` (batched
   * puts) the parents to fsync join the directories sync() fsyncs instead: a
   * fresh store creates a directory for most of its first chunks, and one
   * fsync of the parent at the end covers them all.
   */
  private async ensureDir(dir: string, defer = false): Promise<void> {
    if (this.madeDirs.has(dir)) {
      // Made by a batched put whose parent entries are not durable yet: an unbatched write there needs them now.
      if (!defer && this.deferredDirs.has(dir)) await this.sync();
      return;
    }
    const first = await fs.mkdir(dir, { recursive: true });
    // A new directory's own entry must be durable too: fsync each parent of what was created.
    if (first) {
      for (let d = dir; d.length >= first.length && d !== dirname(d); d = dirname(d)) {
        if (defer) this.unsyncedDirs.add(dirname(d));
        else await fsyncDir(dirname(d));
      }
      if (defer) for (let d = dir; d.length >= first.length && d !== dirname(d); d = dirname(d)) this.deferredDirs.add(d);
    }
    this.madeDirs.add(dir);
  }

  put(key: string, data: Uint8Array, opts: PutOptions = {}): Promise<boolean> {
    return this.writing(key, () => this.putNow(key, data, opts));
  }

  private async putNow(key: string, data: Uint8Array, opts: PutOptions): Promise<boolean> {
    const target = this.path(key);
    const dir = dirname(target);
    await this.ensureDir(dir, opts.batch === true);
    if (!opts.overwrite && (await this.touch(target))) return false;
    const temp = await this.tempFile(dir, data.length >= DIRECT_MIN);
    try {
      if (data.length) await temp.write(data, 0);
      await temp.finish();
    } catch (err) {
      await temp.discard();
      throw err;
    }
    const tmp = temp.path;
    let created = true;
    try {
      if (opts.overwrite) {
        await fs.rename(tmp, target);
      } else {
        // link() fails if the name exists: two writers of the same chunk cannot clobber each other.
        try {
          await fs.link(tmp, target);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          created = false;
          await this.touch(target);
        }
        await fs.unlink(tmp);
      }
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    if (opts.batch) this.unsyncedDirs.add(dir);
    else await fsyncDir(dir);
    return created;
  }

  /**
   * A temporary file in `dir` for a blob on its way in, written at positions that are multiples of 4 KiB.
   * With `direct`, writes go with O_DIRECT straight from an aligned buffer where the filesystem takes it (not
   * tmpfs): on a virtual machine's disk, going through the page cache costs several times the write itself
   * (see docs/PERFORMANCE.md), and what the store writes is not read back soon. `finish` makes the bytes
   * durable and closes the file; `discard` removes it.
   */
  private async tempFile(dir: string, direct: boolean) {
    const path = join(dir, `${TMP_PREFIX}${randomBytes(8).toString('hex')}`);
    const dh = direct ? await this.direct.create(path, dir) : undefined;
    const h = dh ?? (await fs.open(path, 'wx', 0o644));
    let end = 0;
    let closed = false;
    const close = async () => {
      if (!closed) {
        closed = true;
        await h.close();
      }
    };
    return {
      path,
      write: async (data: Uint8Array, position: number) => {
        if (dh) await this.direct.write(h, data, position, dir);
        else await h.write(data, 0, data.length, position);
        end = Math.max(end, position + data.length);
      },
      finish: async () => {
        try {
          // Direct writes pad to whole 4 KiB blocks: the blob ends where its last write did.
          if (dh && end % DIRECT_ALIGN) await h.truncate(end);
          await h.datasync();
        } finally {
          await close();
        }
      },
      discard: async () => {
        await close().catch(() => undefined);
        await fs.rm(path, { force: true });
      },
    };
  }

  async openWriter(key: string): Promise<BlobWriter> {
    const target = this.path(key);
    const dir = dirname(target);
    const temp = await this.writing(key, async () => {
      await this.ensureDir(dir, true);
      return this.tempFile(dir, true);
    });
    return {
      write: async (data, position) => {
        if (position % DIRECT_ALIGN) throw new Error(`blob writes start at multiples of ${DIRECT_ALIGN} bytes, not ${position}`);
        await this.writing(key, () => temp.write(data, position));
      },
      commit: () =>
        this.writing(key, async () => {
          try {
            await temp.finish();
            await fs.link(temp.path, target);
            await fs.unlink(temp.path);
          } catch (err) {
            await temp.discard();
            throw err;
          }
          this.unsyncedDirs.add(dir);
        }),
      abort: () => temp.discard(),
    };
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer | undefined> {
    let h: FileHandle;
    try {
      h = await fs.open(this.path(key), 'r');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    try {
      const buf = Buffer.allocUnsafe(length);
      let n = 0;
      while (n < length) {
        const { bytesRead } = await h.read(buf, n, length - n, offset + n);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      return n === length ? buf : buf.subarray(0, n);
    } finally {
      await h.close();
    }
  }

  sync(): Promise<void> {
    return this.writing('its directories', () => this.syncNow());
  }

  private async syncNow(): Promise<void> {
    const dirs = [...this.unsyncedDirs];
    const deferred = [...this.deferredDirs];
    this.unsyncedDirs.clear();
    this.deferredDirs.clear();
    try {
      await Promise.all(dirs.map((d) => fsyncDir(d)));
    } catch (err) {
      for (const d of deferred) this.deferredDirs.add(d);
      for (const d of dirs) this.unsyncedDirs.add(d);
      throw err;
    }
  }

  /** Marks an existing blob as just used; false when there is none. */
  private async touch(path: string): Promise<boolean> {
    try {
      const now = new Date();
      await fs.utimes(path, now, now);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await fs.readFile(this.path(key));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    try {
      const s = await fs.stat(this.path(key));
      return { key, size: s.size, modifiedMs: s.mtimeMs };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<boolean> {
    const p = this.path(key);
    try {
      await fs.unlink(p);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    await fsyncDir(dirname(p));
    return true;
  }

  move(from: string, to: string): Promise<boolean> {
    return this.writing(to, () => this.moveNow(from, to));
  }

  private async moveNow(from: string, to: string): Promise<boolean> {
    const src = this.path(from);
    const dst = this.path(to);
    await this.ensureDir(dirname(dst));
    try {
      await fs.rename(src, dst);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    await fsyncDir(dirname(dst));
    if (dirname(src) !== dirname(dst)) await fsyncDir(dirname(src));
    return true;
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    const keys: BlobInfo[] = [];
    // Walk only below the directory the prefix names.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    if (dirPart) checkKey(dirPart);
    await this.walk(dirPart ? join(this.root, ...dirPart.split('/')) : this.root, keys);
    keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const k of keys) if (k.key.startsWith(prefix)) yield k;
  }

  private async walk(dir: string, out: BlobInfo[], tmpOut?: string[]): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await this.walk(p, out, tmpOut);
      else if (e.name.startsWith(TMP_PREFIX)) tmpOut?.push(p);
      else if (e.isFile()) {
        const st = await fs.stat(p);
        out.push({ key: relative(this.root, p).split(sep).join('/'), size: st.size, modifiedMs: st.mtimeMs });
      }
    }
  }

  async cleanupTemporary(olderThanMs: number): Promise<number> {
    const tmps: string[] = [];
    await this.walk(this.root, [], tmps);
    let removed = 0;
    for (const t of tmps) {
      const s = await fs.stat(t).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs >= olderThanMs) {
        await fs.rm(t, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

/** The local driver from a region's imageStore.options: `path`, the directory to keep images in. */
export function localBlobDriver(options: Record<string, unknown>, { region }: { region: string }): LocalBlobDriver {
  if (typeof options.path !== 'string' || options.path === '') {
    throw new ImageStoreError(
      'InvalidBlobDriverOptions',
      `Region '${region}': the local image-store driver needs options.path, the directory to keep images in.`,
    );
  }
  return new LocalBlobDriver(options.path, region);
}
