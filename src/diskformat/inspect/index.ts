/**
 * Disk-format inspector for UNTRUSTED uploads.
 *
 * Runs in our own code before any tool (qemu-img) opens the file, using only
 * bounded reads at explicit offsets (never the whole file; every inspection has
 * a byte budget). qemu-img is then run with the format we detected, never a
 * guessed one (see ../qemu-img.ts).
 *
 * Detection (content, never the file name):
 *   qcow2  "QFI\xfb" at 0          vhdx  "vhdxfile" at 0
 *   vmdk   "KDMV" at 0, or a text descriptor ("# Disk DescriptorFile")
 *   vhd    "conectix" footer in the last 512 bytes (fixed) and/or at 0 (dynamic)
 *   raw    none of the above
 * More than one format matching (e.g. a qcow2 header plus a VHD footer, or a
 * fixed VHD whose first sector is a qcow2 header)   → DiskFormatAmbiguous
 * `claimed` given and different from the detection  → DiskFormatMismatch
 *
 * Per format (all refusals are DiskFormatErrors, target "image"; HTTP 400):
 *   qcow2  version not 2/3                                → DiskUnsupportedVersion
 *          backing file (offset != 0, incl. "json:" names) → DiskHasBackingFile
 *          data-file incompatible bit / data-file extension → DiskHasExternalDataFile
 *          unknown incompatible feature bits             → DiskUnsupportedFeature
 *          crypt_method != 0 or encryption header ext    → DiskEncrypted
 *          "corrupt" bit, bad cluster bits/header length/L1 size → DiskCorrupt
 *          header, L1 table, refcount table, an L2 table or a data cluster
 *          (standard or compressed) past EOF             → DiskTruncated
 *   vhd    footer checksum wrong, footers differ, bad dynamic header → DiskCorrupt
 *          disk type 4 (differencing)                   → DiskIsDifferencing
 *          fixed: file < data + 512; dynamic: end footer missing, BAT or a
 *          block past the data area                      → DiskTruncated
 *   vhdx   no valid (CRC-32C) header or region table, bad metadata → DiskCorrupt
 *          version != 1                                   → DiskUnsupportedVersion
 *          log needing replay, unknown required region/metadata → DiskUnsupportedFeature
 *          parent locator item, HasParent flag, partially-present blocks → DiskIsDifferencing
 *          region or data block past EOF                  → DiskTruncated
 *   vmdk   text descriptor, more than one extent, non-SPARSE extent, "/", "\" or
 *          ":" in the extent name, descriptor not at sector 1 or over 1 MiB → DiskHasExternalExtent
 *          parentFileNameHint / parentCID                 → DiskHasBackingFile
 *          encryption keys in the descriptor              → DiskEncrypted
 *          createType not monolithicSparse/streamOptimized → DiskUnsupportedSubformat
 *          header version not 1..3                        → DiskUnsupportedVersion
 *          metadata, grain tables or a grain past EOF, missing stream footer → DiskTruncated
 *   all    virtual size 0                                 → DiskCorrupt
 *          virtual size above `maxVirtualSize` (default 2 TiB) → DiskTooLarge
 *          empty file                                     → DiskTruncated
 *          metadata needing more than `readBudget` bytes, or mapping
 *          tables (L2, grain tables) over 1 GiB           → DiskUnsupportedFeature
 *          a field beyond 2^53, not a regular file        → DiskCorrupt
 *
 * The returned InspectedDisk is frozen and registered; ../qemu-img.ts refuses
 * anything else, re-checks that the file (inode, size, mtime) did not change,
 * and cross-checks `qemu-img info` (format, virtual size, no backing file, no
 * data file, not encrypted). qemu-img failures and timeouts → DiskInspectionFailed.
 */
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { diskError } from '../errors.js';
import { inspectQcow2 } from './qcow2.js';
import { BoundedReader, MiB, TiB } from './reader.js';
import { DISK_FORMATS, type DiskFormat, type FormatContext, type FormatResult, type InspectResult } from './types.js';
import { inspectVhd, isVhdFooter } from './vhd.js';
import { inspectVhdx } from './vhdx.js';
import { inspectVmdk, isVmdkDescriptorText } from './vmdk.js';

export { DISK_FORMATS, type DiskFormat, type InspectResult } from './types.js';

export const DEFAULT_MAX_VIRTUAL_SIZE = 2 * TiB;
const DEFAULT_READ_BUDGET = 96 * MiB;

export interface InspectOptions {
  /** The format the uploader said the file is; a different detection is refused. */
  claimed?: DiskFormat;
  /** Largest accepted virtual size in bytes (default 2 TiB). */
  maxVirtualSize?: number;
  /** Most bytes one inspection may read (default 96 MiB). */
  readBudget?: number;
}

/** A file that passed inspection; qemu-img.ts only accepts these. */
export interface InspectedDisk extends InspectResult {
  readonly path: string;
  readonly ino: number;
  readonly mtimeMs: number;
}

const inspected = new WeakSet<InspectedDisk>();
export const wasInspected = (d: InspectedDisk): boolean => inspected.has(d);

const NAMES: Record<DiskFormat, string> = { raw: 'raw', vhd: 'VHD', vhdx: 'VHDX', qcow2: 'qcow2', vmdk: 'VMDK' };

/** Formats whose signature is present; more than one means a polyglot. */
export function detectFormats(head: Buffer, tail: Buffer): DiskFormat[] {
  const found = new Set<DiskFormat>();
  if (head.length >= 4 && head.readUInt32BE(0) === 0x514649fb) found.add('qcow2');
  if (head.toString('latin1', 0, 8) === 'vhdxfile') found.add('vhdx');
  if (head.toString('latin1', 0, 4) === 'KDMV' || isVmdkDescriptorText(head)) found.add('vmdk');
  if (isVhdFooter(head) || isVhdFooter(tail)) found.add('vhd');
  return [...found];
}

export async function inspect(file: string, opts: InspectOptions = {}): Promise<InspectedDisk> {
  const path = resolve(file);
  const maxVirtualSize = opts.maxVirtualSize ?? DEFAULT_MAX_VIRTUAL_SIZE;
  if (opts.claimed !== undefined && !DISK_FORMATS.includes(opts.claimed)) {
    throw diskError('DiskFormatMismatch', `Unknown disk format "${String(opts.claimed)}"; use one of ${DISK_FORMATS.join(', ')}.`, 'format');
  }
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw diskError('DiskCorrupt', 'The upload is not a regular file.');
    const fileSize = st.size;
    if (fileSize === 0) throw diskError('DiskTruncated', 'The file is empty; the upload probably did not finish. Upload the complete file again.');
    const reader = new BoundedReader(fh, fileSize, opts.readBudget ?? DEFAULT_READ_BUDGET);
    const head = await reader.read(0, 512);
    const tail = fileSize >= 512 ? await reader.read(fileSize - 512, 512) : Buffer.alloc(0);

    const found = detectFormats(head, tail);
    if (found.length > 1) {
      throw diskError(
        'DiskFormatAmbiguous',
        `This file carries the signatures of several disk formats at once (${found.map((f) => NAMES[f]).join(' and ')}), so different tools would read different disks from it. Such "polyglot" files are refused. Convert the disk on a trusted machine with an explicit source format (qemu-img convert -f <format>) and upload the result.`,
      );
    }
    const format: DiskFormat = found[0] ?? 'raw';
    if (opts.claimed !== undefined && opts.claimed !== format) {
      throw diskError(
        'DiskFormatMismatch',
        `The image was declared as ${NAMES[opts.claimed]} but its content is ${NAMES[format]}. Declare the real format, or convert the file to ${NAMES[opts.claimed]} on a trusted machine, and upload again.`,
        'format',
      );
    }
    const ctx: FormatContext = {
      reader,
      fileSize,
      head,
      tail,
      checkSize(size: number, what = 'virtual size') {
        if (size <= 0) throw diskError('DiskCorrupt', `This ${NAMES[format]} image declares a ${what} of ${size} bytes. The file is damaged or crafted.`);
        if (size > maxVirtualSize) {
          throw diskError(
            'DiskTooLarge',
            `This ${NAMES[format]} image declares a ${what} of ${size} bytes, above the limit of ${maxVirtualSize} bytes (${(maxVirtualSize / TiB).toFixed(2)} TiB). Shrink the disk (or ask an administrator to raise the limit) and upload again.`,
          );
        }
      },
    };
    let r: FormatResult;
    switch (format) {
      case 'qcow2':
        r = await inspectQcow2(ctx);
        break;
      case 'vhd':
        r = await inspectVhd(ctx);
        break;
      case 'vhdx':
        r = await inspectVhdx(ctx);
        break;
      case 'vmdk':
        r = await inspectVmdk(ctx);
        break;
      default:
        ctx.checkSize(fileSize);
        r = { virtualSize: fileSize, details: {} };
    }
    const disk: InspectedDisk = { format, virtualSize: r.virtualSize, fileSize, details: r.details, path, ino: st.ino, mtimeMs: st.mtimeMs };
    Object.freeze(disk.details);
    Object.freeze(disk);
    inspected.add(disk);
    return disk;
  } finally {
    await fh.close();
  }
}
