// Capture of a VM's disk into the image store at a cost proportional to what
// changed: the VM's qcow2 overlay holds exactly the guest's writes, so only
// the blocks it touches are read (in place, at the file offsets its cluster
// tables or `qemu-img map` give), merged with the base, hashed on the hashing threads and stored;
// every other block keeps the base's chunk. Our own overlay is always opened
// with an explicit format, never probed.
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { ChunkStore, DiskManifest } from '../imagestore/chunk-store.js';
import { readOverlayMap } from './overlay-map.js';

const run = promisify(execFile);

export interface CaptureStats {
  blocksChanged: number;
  /** Bytes read from the overlay and the base to build the changed blocks. */
  bytesRead: number;
  chunksCreated: number;
  bytesCreated: number;
}

/** One extent of `qemu-img map --output=json`. */
export interface MapExtent {
  start: number;
  length: number;
  depth: number;
  zero: boolean;
  data: boolean;
  /** Where the data is in the image file (for data extents of a plain qcow2). */
  offset?: number;
}

/**
 * What the guest wrote: data extents with their place in the overlay file (uncompressed, unencrypted: QEMU
 * wrote them), read in place, and extents it zeroed, which need no read. From the overlay's own tables
 * when it is a plain one labforge made, else from `qemu-img map` (depth 0).
 */
async function overlayChanges(overlay: string, shared: boolean, baseSize: number): Promise<{ virtualSize: number; changed: MapExtent[] }> {
  const own = await readOverlayMap(overlay, baseSize);
  if (own) return { virtualSize: own.virtualSize, changed: own.extents.map((e) => ({ ...e, depth: 0, data: !e.zero })) };
  const share = shared ? ['-U'] : [];
  const { stdout } = await run('qemu-img', ['map', ...share, '-f', 'qcow2', '--output=json', overlay], { timeout: 120_000, maxBuffer: 256 << 20 });
  const extents = JSON.parse(stdout) as MapExtent[];
  const virtualSize = extents.reduce((n, e) => Math.max(n, e.start + e.length), 0);
  return { virtualSize, changed: extents.filter((e) => e.depth === 0 && (e.zero || (e.data && e.offset !== undefined))) };
}

export async function captureOverlay(
  store: ChunkStore,
  base: { disk: DiskManifest; path: string },
  overlay: string,
  opts: { name: string /** The overlay is open in a paused VM: read it without taking its lock. */; shared?: boolean },
): Promise<{ disk: DiskManifest; stats: CaptureStats }> {
  const { virtualSize, changed } = await overlayChanges(overlay, opts.shared === true, base.disk.virtualSize);
  const { blockSize } = base.disk;
  const count = Math.ceil(virtualSize / blockSize);
  const blocks = [...base.disk.blocks];
  while (blocks.length < count) blocks.push(null);
  blocks.length = count;
  const stats: CaptureStats = { blocksChanged: 0, bytesRead: 0, chunksCreated: 0, bytesCreated: 0 };
  const touched = new Map<number, MapExtent[]>();
  for (const e of changed) {
    for (let b = Math.floor(e.start / blockSize); b * blockSize < e.start + e.length; b++) touched.set(b, [...(touched.get(b) ?? []), e]);
  }
  if (touched.size) {
    const overlayFile = await open(overlay, 'r');
    const baseFile = await open(base.path, 'r');
    try {
      const readBlock = async (offset: number, length: number, buf: Buffer): Promise<Buffer> => {
        const parts = touched.get(offset / blockSize) as MapExtent[];
        const out = buf.subarray(0, length);
        const fullyCovered = parts.some((e) => e.start <= offset && e.start + e.length >= offset + length);
        if (fullyCovered) {
          // nothing of the base shows through
        } else if (offset < base.disk.virtualSize) {
          const { bytesRead } = await baseFile.read(out, 0, Math.min(length, base.disk.virtualSize - offset), offset);
          out.fill(0, bytesRead);
          stats.bytesRead += bytesRead;
        } else out.fill(0);
        for (const e of parts) {
          const from = Math.max(e.start, offset);
          const to = Math.min(e.start + e.length, offset + length);
          if (e.zero) out.fill(0, from - offset, to - offset);
          else {
            await overlayFile.read(out, from - offset, to - from, (e.offset as number) + (from - e.start));
            stats.bytesRead += to - from;
          }
        }
        return out;
      };
      const only = [...touched.keys()].sort((x, y) => x - y);
      const written = await store.writeBlocks(opts.name, virtualSize, readBlock, { blockSize, only });
      for (const b of only) blocks[b] = written.disk.blocks[b] ?? null;
      stats.blocksChanged = only.length;
      stats.chunksCreated = written.stats.chunksCreated;
      stats.bytesCreated = written.stats.bytesCreated;
    } finally {
      await overlayFile.close();
      await baseFile.close();
    }
  }
  while (blocks.length && blocks[blocks.length - 1] === null) blocks.pop();
  return { disk: { name: opts.name, virtualSize, blockSize, blocks }, stats };
}
