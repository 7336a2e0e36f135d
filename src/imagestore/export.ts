// Export of a stored disk: raw, fixed VHD (what Azure and Hyper-V accept:
// virtual size rounded up to a whole MiB, a 512-byte footer appended), or
// qcow2 (built by qemu-img from a temporary sparse raw file, with an explicit
// `-f raw`, so a guest-written header can never be taken for a format).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { ChunkStore, DiskManifest } from './chunk-store.js';

const run = promisify(execFile);
const MiB = 1 << 20;

export type ExportFormat = 'raw' | 'vhd' | 'qcow2';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['raw', 'vhd', 'qcow2'];

export interface ExportStream {
  stream: Readable;
  length: number;
  /** Removes temporary files; call when the stream ended or was abandoned. */
  cleanup(): Promise<void>;
}

/** CHS geometry as the VHD specification computes it from the sector count. */
function vhdGeometry(totalSectors: number): { cylinders: number; heads: number; sectors: number } {
  let sectors = Math.min(totalSectors, 65535 * 16 * 255);
  let spt: number;
  let heads: number;
  let cth: number;
  if (sectors >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(sectors / spt);
  } else {
    spt = 17;
    cth = Math.floor(sectors / spt);
    heads = Math.max(4, Math.floor((cth + 1023) / 1024));
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(sectors / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(sectors / spt);
    }
  }
  sectors = spt;
  return { cylinders: Math.floor(cth / heads), heads, sectors };
}

/** The 512-byte footer of a fixed VHD of `size` bytes. */
export function vhdFooter(size: number): Buffer {
  const f = Buffer.alloc(512);
  f.write('conectix', 0, 'ascii');
  f.writeUInt32BE(2, 8); // features: reserved bit always set
  f.writeUInt32BE(0x00010000, 12); // format version 1.0
  f.writeBigUInt64BE(0xffffffffffffffffn, 16); // data offset: none for fixed disks
  f.writeUInt32BE(Math.max(0, Math.floor((Date.now() - Date.UTC(2000, 0, 1)) / 1000)), 24);
  // Creator "qem2" tells QEMU (and the tools built on it) to take the size from the footer, not from the
  // CHS geometry, which cannot express every whole-MiB size; Hyper-V and Azure ignore the creator.
  f.write('qem2', 28, 'ascii');
  f.writeUInt32BE(0x00010000, 32);
  f.write('Wi2k', 36, 'ascii');
  f.writeBigUInt64BE(BigInt(size), 40);
  f.writeBigUInt64BE(BigInt(size), 48);
  const g = vhdGeometry(Math.floor(size / 512));
  f.writeUInt16BE(g.cylinders, 56);
  f.writeUInt8(g.heads, 58);
  f.writeUInt8(g.sectors, 59);
  f.writeUInt32BE(2, 60); // disk type: fixed
  randomBytes(16).copy(f, 68);
  let sum = 0;
  for (const b of f) sum += b;
  f.writeUInt32BE(~sum >>> 0, 64);
  return f;
}

async function* withTail(body: AsyncIterable<Buffer>, padding: number, tail: Buffer): AsyncIterable<Buffer> {
  yield* body;
  const zero = Buffer.alloc(Math.min(padding, MiB));
  for (let left = padding; left > 0; left -= zero.length) yield left >= zero.length ? zero : zero.subarray(0, left);
  yield tail;
}

export async function exportDisk(store: ChunkStore, disk: DiskManifest, format: ExportFormat, tmpDir: string): Promise<ExportStream> {
  if (format === 'raw') {
    return { stream: Readable.from(store.readDisk(disk)), length: disk.virtualSize, cleanup: async () => undefined };
  }
  if (format === 'vhd') {
    const size = Math.ceil(disk.virtualSize / MiB) * MiB;
    return {
      stream: Readable.from(withTail(store.readDisk(disk), size - disk.virtualSize, vhdFooter(size))),
      length: size + 512,
      cleanup: async () => undefined,
    };
  }
  // qcow2: a sparse raw file with only the stored blocks written, converted by qemu-img.
  await mkdir(tmpDir, { recursive: true });
  const base = join(tmpDir, `export-${randomBytes(8).toString('hex')}`);
  const cleanup = async () => {
    await rm(`${base}.raw`, { force: true });
    await rm(`${base}.qcow2`, { force: true });
  };
  try {
    const h = await open(`${base}.raw`, 'w');
    try {
      for (const [i, digest] of disk.blocks.entries()) {
        if (digest) await h.write(await store.getChunk(digest), 0, undefined, i * disk.blockSize);
      }
      await h.truncate(disk.virtualSize);
    } finally {
      await h.close();
    }
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', `${base}.raw`, `${base}.qcow2`], { timeout: 3600_000 });
    await rm(`${base}.raw`, { force: true });
    const length = (await stat(`${base}.qcow2`)).size;
    const stream = createReadStream(`${base}.qcow2`);
    stream.once('close', () => void cleanup());
    return { stream, length, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
