// Bounded, offset-based reads. The inspector never reads a whole image into
// memory: every read names its offset and length, and the total number of
// bytes one inspection may read is capped.
import type { FileHandle } from 'node:fs/promises';
import { diskError } from '../errors.js';

export class BoundedReader {
  private used = 0;
  private tableBytes = 0;
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly budget: number,
    /** Bytes of mapping tables (qcow2 L2 tables, VMDK grain tables) one inspection may read to check every data block is in the file. */
    private readonly tableBudget = 1024 * MiB,
  ) {}

  /**
   * Reads a mapping table whole (refusing a truncated one), counted against its own, larger budget: a big,
   * fully allocated disk has hundreds of MiB of them, and each must be read to know its data is all there.
   */
  async readTable(offset: number, length: number, what: string): Promise<Buffer> {
    this.tableBytes += length;
    if (this.tableBytes > this.tableBudget) {
      throw diskError(
        'DiskUnsupportedFeature',
        `This image's ${what}s add up to more than ${this.tableBudget / MiB} MiB, far more than a disk of at most the accepted size needs. Convert it to qcow2 with 64 KiB clusters (qemu-img convert -O qcow2) on a trusted machine and upload again.`,
      );
    }
    this.used -= Math.min(length, Math.max(0, this.size - offset));
    return this.readExact(offset, length, what);
  }

  /** Reads exactly `length` bytes at `offset`, or fewer if the file ends first. */
  async read(offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw diskError(
        'DiskCorrupt',
        `The image declares an impossible offset or length (${offset}, ${length}). The file is damaged or was not produced by a disk tool.`,
      );
    }
    if (offset >= this.size || length === 0) return Buffer.alloc(0);
    const n = Math.min(length, this.size - offset);
    this.used += n;
    if (this.used > this.budget) {
      throw diskError(
        'DiskUnsupportedFeature',
        `Inspecting this image needs more than ${this.budget} bytes of metadata, far more than any normal disk image. Convert it to qcow2 or raw with qemu-img on a trusted machine and upload again.`,
      );
    }
    const buf = Buffer.alloc(n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await this.fh.read(buf, done, n - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === n ? buf : buf.subarray(0, done);
  }

  /** Like read(), but refuses with DiskTruncated when the file ends before `offset + length`. */
  async readExact(offset: number, length: number, what: string): Promise<Buffer> {
    if (offset + length > this.size) {
      throw diskError(
        'DiskTruncated',
        `The file is truncated: its ${what} should occupy bytes ${offset}–${offset + length} but the file is only ${this.size} bytes long. Upload the complete file again (check the copy or download finished).`,
      );
    }
    const buf = await this.read(offset, length);
    if (buf.length !== length) throw diskError('DiskTruncated', `The file ended while reading its ${what}. Upload the complete file again.`);
    return buf;
  }
}

/** Reads a u64 (big or little endian) as a number; values above 2^53 are refused as corrupt. */
export function u64(buf: Buffer, offset: number, le: boolean, what: string): number {
  const v = le ? buf.readBigUInt64LE(offset) : buf.readBigUInt64BE(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw diskError('DiskCorrupt', `The image's ${what} (${v}) is larger than any real disk could have. The file is damaged or crafted; do not use it.`);
  }
  return Number(v);
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as used by VHDX headers, region tables and log entries. */
export function crc32c(buf: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC32C_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;
