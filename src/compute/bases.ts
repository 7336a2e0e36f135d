// Materialised bases: to boot a version, a host needs a local read-only file
// of its disk. It is built once per host from a region's chunks (each verified
// by hash), named by the digest of the disk's manifest, and shared by every VM
// of that version: VMs are qcow2 overlays on it, so creating one copies nothing.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ChunkStore, DiskManifest } from '../imagestore/chunk-store.js';
import { DIRECT_ALIGN, DirectWrites } from '../imagestore/direct-io.js';

const run = promisify(execFile);

export const diskDigest = (d: DiskManifest) =>
  createHash('sha256')
    .update(JSON.stringify([d.virtualSize, d.blockSize, d.blocks]))
    .digest('hex');

export class BaseCache {
  private readonly building = new Map<string, Promise<string>>();
  private readonly direct = new DirectWrites();

  constructor(readonly dir: string) {}

  pathFor(disk: DiskManifest): string {
    return join(this.dir, `${diskDigest(disk)}.raw`);
  }

  /** Bases a VM is being made on (not yet recorded as its base): collect() leaves them and their files alone. */
  private readonly pins = new Map<string, number>();

  /** Keeps `collect` off a base until `unpin`, while a VM's disk is being made on it. */
  pin(path: string): void {
    this.pins.set(path, (this.pins.get(path) ?? 0) + 1);
  }

  unpin(path: string): void {
    const n = (this.pins.get(path) ?? 1) - 1;
    if (n > 0) this.pins.set(path, n);
    else this.pins.delete(path);
  }

  /** The base file of a disk, built from the store's chunks the first time. */
  async materialize(store: ChunkStore, disk: DiskManifest): Promise<string> {
    const path = this.pathFor(disk);
    try {
      await stat(path);
      return path;
    } catch {
      // not built yet
    }
    let p = this.building.get(path);
    if (!p) {
      p = this.build(store, disk, path).finally(() => this.building.delete(path));
      this.building.set(path, p);
    }
    return p;
  }

  private async build(store: ChunkStore, disk: DiskManifest, path: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      // Direct writes where the filesystem takes them (docs/PERFORMANCE.md): a base is read by QEMU later, not now.
      const direct = disk.blockSize % DIRECT_ALIGN === 0 ? await this.direct.create(tmp, this.dir) : undefined;
      const h = direct ?? (await open(tmp, 'wx', 0o644));
      try {
        // Zero blocks stay holes: the file is as sparse as the image. Eight chunks are read, checked and written at once.
        const todo = [...disk.blocks.entries()].filter(([, d]) => d !== null) as [number, string][];
        const worker = async () => {
          for (let next = todo.shift(); next; next = todo.shift()) {
            const data = await store.getChunk(next[1]);
            const position = next[0] * disk.blockSize;
            if (direct) await this.direct.write(direct, data, position, this.dir);
            else await h.write(data, 0, undefined, position);
          }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
        await h.truncate(disk.virtualSize);
        await h.sync();
      } finally {
        await h.close();
      }
      await chmod(tmp, 0o444);
      await rename(tmp, path);
      return path;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * A copy-on-write overlay on a base: a VM's writable disk. An empty overlay
   * is the same file for every VM of a base, so qemu-img makes it once per
   * base and each VM gets a copy of that small file (no process to start).
   */
  async createOverlay(base: string, overlay: string): Promise<void> {
    const template = base.replace(/\.raw$/, '.overlay.qcow2');
    try {
      await copyFile(template, overlay, constants.COPYFILE_EXCL);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || existsSync(template)) throw err;
    }
    const tmp = `${template}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, tmp], { timeout: 30_000 });
      await rename(tmp, template);
    } finally {
      await rm(tmp, { force: true });
    }
    await copyFile(template, overlay, constants.COPYFILE_EXCL);
  }

  /** Removes bases no VM uses (and leftovers of interrupted builds); returns the names removed. */
  async collect(inUse: Set<string>): Promise<string[]> {
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const n of names) {
      const p = join(this.dir, n);
      // The base a file belongs to: X.raw, its overlay template X.overlay.qcow2, or their X….tmp-… while being made.
      const base = p.replace(/\.tmp-[^/]*$/, '').replace(/\.overlay\.qcow2$/, '.raw');
      if (this.pins.has(base)) continue;
      if (n.includes('.tmp-') || ((n.endsWith('.raw') || n.endsWith('.overlay.qcow2')) && !inUse.has(base))) {
        await rm(p, { force: true });
        removed.push(n);
      }
    }
    return removed;
  }
}
