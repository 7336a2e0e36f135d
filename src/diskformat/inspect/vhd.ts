// VHD (Virtual PC / Hyper-V gen 1): a 512-byte big-endian footer ("conectix")
// at the end of the file; dynamic disks also keep a copy at offset 0 and a
// "cxsparse" header pointing to the block allocation table (BAT).
import { diskError } from '../errors.js';
import { u64 } from './reader.js';
import type { FormatContext, FormatResult } from './types.js';

const COOKIE = 'conectix';
const TYPE_FIXED = 2;
const TYPE_DYNAMIC = 3;
const TYPE_DIFFERENCING = 4;
const UNUSED = 0xffffffff;
// Creators whose footer "current size" qemu trusts instead of the CHS geometry.
const SIZE_CREATORS = ['win ', 'qem2', 'd2v ', 'CTXS'];

export const isVhdFooter = (buf: Buffer): boolean => buf.length >= 512 && buf.toString('latin1', 0, 8) === COOKIE;

/** One's complement of the byte sum, skipping the 4-byte checksum field at `at`. */
export function vhdChecksum(buf: Buffer, at: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < at || i >= at + 4) sum = (sum + buf[i]!) >>> 0;
  return ~sum >>> 0;
}

const REEXPORT =
  'Re-export the disk from Hyper-V or convert it with "qemu-img convert -O vpc -o subformat=fixed,force_size" on a trusted machine, and upload again.';

export async function inspectVhd(ctx: FormatContext): Promise<FormatResult> {
  const { reader, fileSize, head, tail } = ctx;
  const copyAtStart = isVhdFooter(head);
  const atEnd = isVhdFooter(tail);
  const footer = atEnd ? tail : head;
  if (footer.readUInt32BE(64) !== vhdChecksum(footer.subarray(0, 512), 64)) {
    throw diskError('DiskCorrupt', `The VHD footer checksum is wrong, so the file is damaged or was edited by hand. ${REEXPORT}`);
  }
  const diskType = footer.readUInt32BE(60);
  if (diskType === TYPE_DIFFERENCING) {
    throw diskError(
      'DiskIsDifferencing',
      'This VHD is a differencing disk: it only stores changes against a parent disk that is not part of the upload. Merge it into its parent (Hyper-V "Edit Disk" → Merge, or export the VM) and upload the resulting fixed or dynamic VHD.',
    );
  }
  if (diskType !== TYPE_FIXED && diskType !== TYPE_DYNAMIC)
    throw diskError('DiskCorrupt', `The VHD footer declares an unknown disk type ${diskType}. ${REEXPORT}`);
  if (diskType === TYPE_DYNAMIC && !atEnd) {
    throw diskError(
      'DiskTruncated',
      `This dynamic VHD is missing its footer at the end of the file, so the upload is incomplete. Upload the complete file again.`,
    );
  }
  if (diskType === TYPE_DYNAMIC && !copyAtStart) throw diskError('DiskCorrupt', `This dynamic VHD has no footer copy at the start of the file. ${REEXPORT}`);
  if (diskType === TYPE_FIXED && copyAtStart)
    throw diskError('DiskCorrupt', `This fixed VHD has a footer at the start of the file, where its data belongs. ${REEXPORT}`);
  if (copyAtStart && !head.subarray(0, 512).equals(tail.subarray(0, 512))) {
    throw diskError('DiskCorrupt', `The two footer copies of this dynamic VHD differ. ${REEXPORT}`);
  }

  const currentSize = u64(footer, 48, false, 'current size');
  const cyls = footer.readUInt16BE(56);
  const heads = footer.readUInt8(58);
  const secs = footer.readUInt8(59);
  const creator = footer.toString('latin1', 28, 32);
  const chsSize = cyls * heads * secs * 512;
  const useChs = !SIZE_CREATORS.includes(creator) && !creator.startsWith('tap');
  const maxGeometry = cyls === 65535 && heads === 16 && secs === 255;
  const virtualSize = !useChs || maxGeometry ? currentSize : chsSize;
  ctx.checkSize(virtualSize);
  ctx.checkSize(currentSize, 'current size');
  const details = { subformat: diskType === TYPE_FIXED ? 'fixed' : 'dynamic', currentSize, creator: creator.replace(/[^\x20-\x7e]/g, '?') };

  if (diskType === TYPE_FIXED) {
    const need = Math.max(currentSize, virtualSize) + 512;
    if (fileSize < need) {
      throw diskError(
        'DiskTruncated',
        `The file is truncated: this fixed VHD declares ${currentSize} bytes of data plus a 512-byte footer (${need} bytes) but the file is only ${fileSize} bytes long. Upload the complete file again.`,
      );
    }
    return { virtualSize, details };
  }

  const dataOffset = u64(footer, 16, false, 'dynamic header offset');
  const dyn = await reader.readExact(dataOffset, 1024, 'VHD dynamic header');
  if (dyn.toString('latin1', 0, 8) !== 'cxsparse')
    throw diskError('DiskCorrupt', `This dynamic VHD has no "cxsparse" header where its footer says. ${REEXPORT}`);
  if (dyn.readUInt32BE(36) !== vhdChecksum(dyn, 36)) throw diskError('DiskCorrupt', `The VHD dynamic header checksum is wrong. ${REEXPORT}`);
  const batOffset = u64(dyn, 16, false, 'BAT offset');
  const entries = dyn.readUInt32BE(28);
  const blockSize = dyn.readUInt32BE(32);
  if (blockSize < 512 || blockSize > 256 * 1024 * 1024 || (blockSize & (blockSize - 1)) !== 0) {
    throw diskError('DiskCorrupt', `This dynamic VHD declares an invalid block size (${blockSize}). ${REEXPORT}`);
  }
  if (entries * blockSize < virtualSize) {
    throw diskError('DiskCorrupt', `This dynamic VHD's block table (${entries} blocks) is too small for its virtual size. ${REEXPORT}`);
  }
  const bat = await reader.readExact(batOffset, entries * 4, 'VHD block allocation table');
  const bitmapSize = Math.ceil(blockSize / 512 / 8 / 512) * 512;
  const dataEnd = fileSize - 512;
  for (let i = 0; i < entries; i++) {
    const sector = bat.readUInt32BE(i * 4);
    if (sector === UNUSED) continue;
    const end = sector * 512 + bitmapSize + blockSize;
    if (end > dataEnd) {
      throw diskError(
        'DiskTruncated',
        `The file is truncated: block ${i} of this dynamic VHD ends at byte ${end} but the data area ends at ${dataEnd}. Upload the complete file again.`,
      );
    }
  }
  return { virtualSize, details: { ...details, blockSize } };
}
