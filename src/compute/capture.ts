// Capture of a VM's disk into the image store at a cost proportional to what
// changed: the VM's qcow2 overlay holds exactly the guest's writes, so only
// the blocks it touches are read, merged with the base and stored; every
// other block keeps the base's chunk. Our own overlay is always opened with
// an explicit format, never probed.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ChunkStore, DiskManifest } from '../imagestore/chunk-store.js';

const run = promisify(execFile);

export interface CaptureStats {
  blocksChanged: number;
  /** Bytes read from the overlay and the base to build the changed blocks. */
  bytesRead: number;
  chunksCreated: number;
  bytesCreated: number;
}

interface MapExtent {
  start: number;
  length: number;
  depth: number;
  zero: boolean;
  data: boolean;
}

export async function captureOverlay(
  store: ChunkStore,
  base: { disk: DiskManifest; path: string },
  overlay: string,
  opts: { name: string; tmpDir: string /** The overlay is open in a paused VM: read it without taking its lock. */; shared?: boolean },
): Promise<{ disk: DiskManifest; stats: CaptureStats }> {
  const share = opts.shared ? ['-U'] : [];
  const { stdout } = await run('qemu-img', ['map', ...share, '-f', 'qcow2', '--output=json', overlay], { timeout: 120_000, maxBuffer: 256 << 20 });
  const extents = JSON.parse(stdout) as MapExtent[];
  const virtualSize = extents.reduce((n, e) => Math.max(n, e.start + e.length), 0);
  const changed = extents.filter((e) => e.depth === 0);
  const { blockSize } = base.disk;
  const blocks = [...base.disk.blocks];
  const count = Math.ceil(virtualSize / blockSize);
  while (blocks.length < count) blocks.push(null);
  blocks.length = count;
  const stats: CaptureStats = { blocksChanged: 0, bytesRead: 0, chunksCreated: 0, bytesCreated: 0 };
  if (changed.length) {
    await mkdir(opts.tmpDir, { recursive: true });
    // The overlay alone, backing detached: a sparse file of just the guest's writes.
    const diff = join(opts.tmpDir, `capture-${randomBytes(6).toString('hex')}.raw`);
    const spec = JSON.stringify({ driver: 'qcow2', backing: null, file: { driver: 'file', filename: overlay } });
    try {
      await run('qemu-img', ['convert', ...share, '-f', 'qcow2', '-O', 'raw', `json:${spec}`, diff], { timeout: 3600_000 });
      const touched = new Map<number, MapExtent[]>();
      for (const e of changed) {
        for (let b = Math.floor(e.start / blockSize); b * blockSize < e.start + e.length; b++) touched.set(b, [...(touched.get(b) ?? []), e]);
      }
      const diffFile = await open(diff, 'r');
      const baseFile = await open(base.path, 'r');
      try {
        const zero = Buffer.alloc(blockSize);
        for (const [b, parts] of [...touched.entries()].sort((x, y) => x[0] - y[0])) {
          const offset = b * blockSize;
          const length = Math.min(blockSize, virtualSize - offset);
          const buf = Buffer.alloc(length);
          const fullyCovered = parts.some((e) => e.start <= offset && e.start + e.length >= offset + length);
          if (!fullyCovered && offset < base.disk.virtualSize) {
            const { bytesRead } = await baseFile.read(buf, 0, Math.min(length, base.disk.virtualSize - offset), offset);
            stats.bytesRead += bytesRead;
          }
          for (const e of parts) {
            const from = Math.max(e.start, offset);
            const to = Math.min(e.start + e.length, offset + length);
            if (e.zero) buf.fill(0, from - offset, to - offset);
            else {
              await diffFile.read(buf, from - offset, to - from, from);
              stats.bytesRead += to - from;
            }
          }
          stats.blocksChanged++;
          if (buf.equals(length === blockSize ? zero : zero.subarray(0, length))) {
            blocks[b] = null;
            continue;
          }
          const { digest, created } = await store.putChunk(buf);
          blocks[b] = digest;
          if (created) {
            stats.chunksCreated++;
            stats.bytesCreated += length;
          }
        }
      } finally {
        await diffFile.close();
        await baseFile.close();
      }
      await store.flush();
    } finally {
      await rm(diff, { force: true });
    }
  }
  while (blocks.length && blocks[blocks.length - 1] === null) blocks.pop();
  return { disk: { name: opts.name, virtualSize, blockSize, blocks }, stats };
}
