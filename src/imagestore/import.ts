// Import of an untrusted disk file into a region's chunk store: our inspector
// and a confined `qemu-img info` check it first; raw and fixed VHD content is
// then read directly (the guest data sits at offset 0), every other format is
// converted to a temporary raw file by qemu-img with an explicit format.
// Nothing reads the file as a disk before the inspector accepted it.
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { convert, type InspectedDisk, inspectAndCheck } from '../diskformat/index.js';
import type { ChunkStore, DiskManifest, WriteStats } from './chunk-store.js';

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

export async function importDisk(store: ChunkStore, file: string, opts: ImportOptions): Promise<ImportResult> {
  const checked = await inspectAndCheck(file, { maxVirtualSize: opts.maxVirtualSize });
  opts.signal?.throwIfAborted();
  let source = file;
  let converted: string | undefined;
  let base = 0;
  try {
    if (!directlyReadable(checked)) {
      await mkdir(opts.tmpDir, { recursive: true });
      converted = join(opts.tmpDir, `${opts.tmpName}.raw`);
      await convert(checked, converted, 'raw', { maxVirtualSize: opts.maxVirtualSize, onProgress: (pct) => opts.onProgress?.(pct / 200) });
      source = converted;
      base = 0.5;
    }
    opts.signal?.throwIfAborted();
    const size = checked.virtualSize;
    const stream = createReadStream(source, { start: 0, end: size - 1, highWaterMark: 4 << 20 });
    const { disk, stats } = await store.writeDisk(opts.name, stream, size, {
      signal: opts.signal,
      onProgress: (read) => opts.onProgress?.(base + ((1 - base) * read) / size),
    });
    return { disk, stats, format: checked.format, details: checked.details };
  } finally {
    if (converted) await rm(converted, { force: true });
  }
}
