// Import of an untrusted disk file into a region's chunk store: our inspector
// and a confined `qemu-img info` check it first; raw and fixed VHD content is
// then read directly (the guest data sits at offset 0), every other format is
// read through a confined, read-only qemu-nbd with the inspected format, block
// by block, with no temporary copy. Nothing reads the file as a disk before
// the inspector accepted it. Holes (from `qemu-img map`) are not read at all.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type InspectedDisk, inspectAndCheck, openGuestReader } from '../diskformat/index.js';
import type { ChunkStore, DiskManifest, WriteStats } from './chunk-store.js';

const run = promisify(execFile);

export interface ImportOptions {
  /** Disk name in the manifest: `os` or `data-<lun>`. */
  name: string;
  maxVirtualSize: number;
  /** Where the temporary raw file of a conversion goes (removed afterwards). */
  tmpDir: string;
  /** A name for the temporary file unique to this import. */
  tmpName: string;
  signal?: AbortSignal;
  /** Fraction done, 0..1: conversion counts for the first half when there is one. */
  onProgress?: (fraction: number) => void;
}

export interface ImportResult {
  disk: DiskManifest;
  stats: WriteStats;
  format: InspectedDisk['format'];
  details: InspectedDisk['details'];
}

const directlyReadable = (d: InspectedDisk) => d.format === 'raw' || (d.format === 'vhd' && d.details.subformat === 'fixed');

/**
 * The byte ranges of a file that hold data, from `qemu-img map -f raw`
 * (which asks the file system for holes). `-f raw` never interprets content,
 * so this is safe on any file; it runs confined like every qemu-img call.
 */
async function dataExtents(file: string, size: number): Promise<Array<[number, number]>> {
  try {
    const { stdout } = await run('prlimit', ['--as=1073741824', '--cpu=60', '--', 'qemu-img', 'map', '-f', 'raw', '--output=json', file], {
      timeout: 120_000,
      maxBuffer: 256 << 20,
    });
    const extents = JSON.parse(stdout) as Array<{ start: number; length: number; data: boolean; zero: boolean }>;
    return extents.filter((e) => e.data && !e.zero && e.start < size).map((e) => [e.start, Math.min(e.start + e.length, size)] as [number, number]);
  } catch {
    // Without a map, read everything: slower, never wrong.
    return [[0, size]];
  }
}

/** Whether [start, end) overlaps a data extent; extents are sorted and disjoint. */
function overlapsData(extents: Array<[number, number]>, start: number, end: number): boolean {
  let lo = 0;
  let hi = extents.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [s, e] = extents[mid] as [number, number];
    if (e <= start) lo = mid + 1;
    else if (s >= end) hi = mid - 1;
    else return true;
  }
  return false;
}

export async function importDisk(store: ChunkStore, file: string, opts: ImportOptions): Promise<ImportResult> {
  const checked = await inspectAndCheck(file, { maxVirtualSize: opts.maxVirtualSize });
  opts.signal?.throwIfAborted();
  const size = checked.virtualSize;
  const onProgress = (done: number) => opts.onProgress?.(done / size);
  if (directlyReadable(checked)) {
    const extents = await dataExtents(file, size);
    // Blocks are read on the hashing threads (positioned reads, holes skipped), so reading overlaps chunk writes.
    const { disk, stats } = await store.writeBlocks(
      opts.name,
      size,
      { path: file, isHole: (offset, length) => !overlapsData(extents, offset, offset + length) },
      { signal: opts.signal, onProgress },
    );
    return { disk, stats, format: checked.format, details: checked.details };
  }
  // Every other format is read through qemu-nbd, block by block, straight into chunks: no temporary copy of the
  // disk, so a small compressed image that expands to gigabytes needs no space beyond its chunks.
  const guest = await openGuestReader(checked);
  try {
    const extents = await guest.extents();
    opts.signal?.throwIfAborted();
    const { disk, stats } = await store.writeBlocks(
      opts.name,
      size,
      (offset, length, buf) => (overlapsData(extents, offset, offset + length) ? guest.read(offset, length, buf) : Promise.resolve(null)),
      { signal: opts.signal, onProgress },
    );
    return { disk, stats, format: checked.format, details: checked.details };
  } finally {
    await guest.close();
  }
}
