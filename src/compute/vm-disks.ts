// A VM's files on its host: a folder per VM under `<compute.dir>/disks/<vm>/`
// holding its OS disk (`os.qcow2`, a copy-on-write overlay on the version's
// materialised base) and, for Generalized images, its identity disk
// (`seed.iso`, a NoCloud seed). Services decide what a VM is; this module is
// the only one that writes those files, and it captures an overlay back into
// an image store (pausing a running VM so its disk is consistent).
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkStore, DiskManifest } from '../imagestore/chunk-store.js';
import { BaseCache } from './bases.js';
import { type CaptureStats, captureOverlay } from './capture.js';
import type { ComputeDriver, VmSpec } from './compute-driver.js';
import { buildSeed, type SeedIdentity } from './qemu/seed.js';

/** What the driver needs to know of a VM beyond its files. */
export interface VmShape {
  vcpus: number;
  memoryMiB: number;
  hyperVGeneration: 'V1' | 'V2';
  /** The guest port forwarded to the host: SSH (22) or RDP (3389). */
  guestPort: number;
}

export class VmDisks {
  readonly bases: BaseCache;

  constructor(
    readonly dir: string,
    private readonly driver: ComputeDriver,
  ) {
    this.bases = new BaseCache(join(dir, 'bases'));
  }

  private folder(vmKey: string): string {
    return join(this.dir, 'disks', vmKey);
  }

  overlayPath(vmKey: string): string {
    return join(this.folder(vmKey), 'os.qcow2');
  }

  seedPath(vmKey: string): string {
    return join(this.folder(vmKey), 'seed.iso');
  }

  hasSeed(vmKey: string): boolean {
    return existsSync(this.seedPath(vmKey));
  }

  /** Writes the VM's identity disk (whole or not at all: a half-written seed is never attached). */
  async writeSeed(vmKey: string, identity: SeedIdentity): Promise<void> {
    await mkdir(this.folder(vmKey), { recursive: true });
    const tmp = `${this.seedPath(vmKey)}.tmp`;
    await buildSeed(identity, tmp);
    await rename(tmp, this.seedPath(vmKey));
  }

  /** Makes the VM's OS disk: an empty overlay on the base of `disk` (materialised from `store` the first time). Returns the base file. */
  async provision(vmKey: string, store: ChunkStore, disk: DiskManifest): Promise<string> {
    // Until the VM's record names its base, a VM deleted meanwhile must not make the base look unused (collect).
    const pinned = this.bases.pathFor(disk);
    this.bases.pin(pinned);
    try {
      const base = await this.bases.materialize(store, disk);
      await mkdir(this.folder(vmKey), { recursive: true });
      const overlay = this.overlayPath(vmKey);
      // A crash may have left a half-written overlay; a new one costs milliseconds.
      await rm(overlay, { force: true });
      await this.bases.createOverlay(base, overlay);
      return base;
    } finally {
      this.bases.unpin(pinned);
    }
  }

  /** The base file of a disk, materialised from `store` the first time. */
  base(store: ChunkStore, disk: DiskManifest): Promise<string> {
    return this.bases.materialize(store, disk);
  }

  /** Drops everything the guest wrote: a new empty overlay on the same base. */
  async reimage(vmKey: string, store: ChunkStore, disk: DiskManifest): Promise<void> {
    const base = await this.bases.materialize(store, disk);
    await rm(this.overlayPath(vmKey), { force: true });
    await this.bases.createOverlay(base, this.overlayPath(vmKey));
  }

  /** The driver's spec of the VM: its overlay and, when there is one, its identity disk. */
  spec(vmKey: string, shape: VmShape): VmSpec {
    return {
      id: vmKey,
      vcpus: shape.vcpus,
      memoryMiB: shape.memoryMiB,
      hyperVGeneration: shape.hyperVGeneration,
      disks: [{ path: this.overlayPath(vmKey), format: 'qcow2' }],
      ...(this.hasSeed(vmKey) ? { seed: { path: this.seedPath(vmKey), format: 'raw' as const } } : {}),
      forward: { guestPort: shape.guestPort, hostPort: 0 },
    };
  }

  /** Registers (or updates) the VM with the driver. */
  async define(vmKey: string, shape: VmShape): Promise<void> {
    await this.driver.create(this.spec(vmKey, shape));
  }

  /**
   * Captures the VM's OS disk into `store`: only the blocks its overlay holds are read. A running VM is paused
   * (its disks flushed) for the capture and resumed after.
   */
  async capture(
    vmKey: string,
    store: ChunkStore,
    base: { disk: DiskManifest; path: string },
    name: string,
  ): Promise<{ disk: DiskManifest; stats: CaptureStats }> {
    const paused = await this.driver.pause(vmKey);
    try {
      return await captureOverlay(store, base, this.overlayPath(vmKey), { name, shared: paused });
    } finally {
      if (paused) await this.driver.resume(vmKey);
    }
  }

  /** Stops the VM and removes everything it has on this host. */
  async remove(vmKey: string): Promise<void> {
    await this.driver.delete(vmKey);
    await rm(this.folder(vmKey), { recursive: true, force: true });
  }

  /** Removes the VM's folder only (a VM that was never registered with the driver). */
  async removeFolder(vmKey: string): Promise<void> {
    await rm(this.folder(vmKey), { recursive: true, force: true });
  }

  /** The VMs that have a folder on this host (their keys). */
  async folders(): Promise<{ key: string; modifiedMs: number }[]> {
    const dir = join(this.dir, 'disks');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    const out: { key: string; modifiedMs: number }[] = [];
    for (const key of names) {
      const st = await stat(join(dir, key)).catch(() => undefined);
      if (st?.isDirectory()) out.push({ key, modifiedMs: st.mtimeMs });
    }
    return out;
  }

  /** Removes materialised bases no VM uses any more. */
  collectBases(inUse: Set<string>): Promise<string[]> {
    return this.bases.collect(inUse);
  }
}
