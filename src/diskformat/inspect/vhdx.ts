// VHDX (Hyper-V gen 2). Little-endian. File identifier "vhdxfile" at 0, two
// headers at 64 KiB / 128 KiB, two region tables at 192 KiB / 256 KiB, each
// protected by CRC-32C; the metadata region holds the virtual disk size,
// block size and (for differencing disks) the parent locator.
import { diskError } from '../errors.js';
import { crc32c, MiB, u64 } from './reader.js';
import type { FormatContext, FormatResult } from './types.js';

const KiB = 1024;

/** GUID text → on-disk bytes (first three fields little-endian). */
export function guidBytes(guid: string): Buffer {
  const hex = guid.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8),
  ]);
}

export const VHDX_GUIDS = {
  bat: guidBytes('2DC27766-F623-4200-9D64-115E9BFD4A08'),
  metadata: guidBytes('8B7CA206-4790-4B9A-B8FE-575F050F886E'),
  fileParameters: guidBytes('CAA16737-FA36-4D43-B3B6-33F0AA44E76B'),
  virtualDiskSize: guidBytes('2FA54224-CD1B-4876-B211-5DBED83BF4B8'),
  virtualDiskId: guidBytes('BECA12AB-B2E6-4523-93EF-C309E000C746'),
  logicalSectorSize: guidBytes('8141BF1D-A96F-4709-BA47-F233A8FAAB5F'),
  physicalSectorSize: guidBytes('CDA348C7-445D-4471-9CC9-E9885251C556'),
  parentLocator: guidBytes('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C'),
};

const REEXPORT = 'Export the disk again from Hyper-V (or convert it with "qemu-img convert -O vhdx" on a trusted machine) and upload the result.';
const DIFFERENCING =
  'This VHDX is a differencing disk: it only stores changes against a parent disk that is not part of the upload. Merge it into its parent (Hyper-V "Edit Disk" → Merge, or export the VM) and upload the merged disk.';

/** Verifies a CRC-32C stored at offset 4 of `buf` (computed with that field zeroed). */
export function vhdxChecksumOk(buf: Buffer): boolean {
  const copy = Buffer.from(buf);
  const stored = copy.readUInt32LE(4);
  copy.writeUInt32LE(0, 4);
  return crc32c(copy) === stored;
}

export async function inspectVhdx(ctx: FormatContext): Promise<FormatResult> {
  const { reader, fileSize } = ctx;
  if (fileSize < MiB) {
    throw diskError(
      'DiskTruncated',
      `The file is truncated: a VHDX starts with a 1 MiB header section but the file is only ${fileSize} bytes long. Upload the complete file again.`,
    );
  }

  // Headers: the valid one with the higher sequence number is current.
  let header: Buffer | undefined;
  let seq = -1n;
  for (const at of [64 * KiB, 128 * KiB]) {
    const h = await reader.readExact(at, 4 * KiB, 'VHDX header');
    if (h.toString('latin1', 0, 4) !== 'head' || !vhdxChecksumOk(h)) continue;
    const s = h.readBigUInt64LE(8);
    if (s > seq) {
      seq = s;
      header = h;
    }
  }
  if (!header) throw diskError('DiskCorrupt', `Neither VHDX header has a valid signature and checksum. ${REEXPORT}`);
  const version = header.readUInt16LE(66);
  if (version !== 1) throw diskError('DiskUnsupportedVersion', `This VHDX declares version ${version}; only version 1 is supported. ${REEXPORT}`);
  if (!header.subarray(48, 64).equals(Buffer.alloc(16))) {
    throw diskError(
      'DiskUnsupportedFeature',
      'This VHDX has an unfinished log (it was not shut down cleanly), and replaying it would modify the file. Attach and detach it once in Hyper-V (or shut the VM down cleanly), then upload it again.',
    );
  }

  // Region table: the first valid copy.
  let table: Buffer | undefined;
  for (const at of [192 * KiB, 256 * KiB]) {
    const t = await reader.readExact(at, 64 * KiB, 'VHDX region table');
    if (t.toString('latin1', 0, 4) === 'regi' && vhdxChecksumOk(t)) {
      table = t;
      break;
    }
  }
  if (!table) throw diskError('DiskCorrupt', `Neither VHDX region table has a valid signature and checksum. ${REEXPORT}`);
  const regionCount = table.readUInt32LE(8);
  if (regionCount > 2047) throw diskError('DiskCorrupt', `The VHDX region table declares ${regionCount} entries (at most 2047). ${REEXPORT}`);
  let bat: { offset: number; length: number } | undefined;
  let meta: { offset: number; length: number } | undefined;
  for (let i = 0; i < regionCount; i++) {
    const e = table.subarray(16 + i * 32, 48 + i * 32);
    const offset = u64(e, 16, true, 'region offset');
    const length = e.readUInt32LE(24);
    const required = (e.readUInt32LE(28) & 1) === 1;
    const guid = e.subarray(0, 16);
    const known = guid.equals(VHDX_GUIDS.bat) ? 'bat' : guid.equals(VHDX_GUIDS.metadata) ? 'metadata' : undefined;
    if (!known) {
      if (required) throw diskError('DiskUnsupportedFeature', `This VHDX has a required region of an unknown type (${guid.toString('hex')}). ${REEXPORT}`);
      continue;
    }
    if (offset < MiB || offset % MiB !== 0 || length === 0 || length % MiB !== 0) {
      throw diskError('DiskCorrupt', `The VHDX ${known} region is misplaced (offset ${offset}, length ${length}). ${REEXPORT}`);
    }
    if (offset + length > fileSize) {
      throw diskError(
        'DiskTruncated',
        `The file is truncated: the VHDX ${known} region ends at byte ${offset + length} but the file is only ${fileSize} bytes long. Upload the complete file again.`,
      );
    }
    if (known === 'bat') bat = { offset, length };
    else meta = { offset, length };
  }
  if (!bat || !meta) throw diskError('DiskCorrupt', `This VHDX lacks its block table or metadata region. ${REEXPORT}`);

  // Metadata table and items.
  const mt = await reader.readExact(meta.offset, 64 * KiB, 'VHDX metadata table');
  if (mt.toString('latin1', 0, 8) !== 'metadata') throw diskError('DiskCorrupt', `The VHDX metadata table has no valid signature. ${REEXPORT}`);
  const itemCount = mt.readUInt16LE(10);
  if (itemCount > 2047) throw diskError('DiskCorrupt', `The VHDX metadata table declares ${itemCount} entries (at most 2047). ${REEXPORT}`);
  const items = new Map<string, Buffer>();
  for (let i = 0; i < itemCount; i++) {
    const e = mt.subarray(32 + i * 32, 64 + i * 32);
    const guid = e.subarray(0, 16);
    const offset = e.readUInt32LE(16);
    const length = e.readUInt32LE(20);
    const required = (e.readUInt32LE(24) & 4) !== 0;
    if (guid.equals(VHDX_GUIDS.parentLocator)) throw diskError('DiskIsDifferencing', DIFFERENCING);
    const name = Object.entries(VHDX_GUIDS).find(([, g]) => g.equals(guid))?.[0];
    if (!name || name === 'bat' || name === 'metadata') {
      if (required)
        throw diskError('DiskUnsupportedFeature', `This VHDX has a required metadata item of an unknown type (${guid.toString('hex')}). ${REEXPORT}`);
      continue;
    }
    if (length === 0) continue;
    if (offset < 64 * KiB || length > MiB || offset + length > meta.length) {
      throw diskError('DiskCorrupt', `The VHDX metadata item ${name} lies outside the metadata region. ${REEXPORT}`);
    }
    items.set(name, await reader.readExact(meta.offset + offset, length, `VHDX ${name} metadata`));
  }
  const params = items.get('fileParameters');
  const sizeItem = items.get('virtualDiskSize');
  const lss = items.get('logicalSectorSize');
  if (!params || params.length < 8 || !sizeItem || sizeItem.length < 8 || !lss || lss.length < 4) {
    throw diskError('DiskCorrupt', `This VHDX lacks required metadata (file parameters, virtual disk size, logical sector size). ${REEXPORT}`);
  }
  const blockSize = params.readUInt32LE(0);
  if ((params.readUInt32LE(4) & 2) !== 0) throw diskError('DiskIsDifferencing', DIFFERENCING);
  if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) {
    throw diskError('DiskCorrupt', `This VHDX declares an invalid block size (${blockSize}). ${REEXPORT}`);
  }
  const logicalSectorSize = lss.readUInt32LE(0);
  if (logicalSectorSize !== 512 && logicalSectorSize !== 4096) {
    throw diskError('DiskCorrupt', `This VHDX declares an invalid logical sector size (${logicalSectorSize}). ${REEXPORT}`);
  }
  const virtualSize = u64(sizeItem, 0, true, 'virtual disk size');
  ctx.checkSize(virtualSize);

  // BAT: payload entries interleaved with one sector-bitmap entry per chunk.
  const chunkRatio = (2 ** 23 * logicalSectorSize) / blockSize;
  const dataBlocks = Math.ceil(virtualSize / blockSize);
  const total = dataBlocks + Math.floor((dataBlocks - 1) / chunkRatio);
  if (total * 8 > bat.length) throw diskError('DiskCorrupt', `This VHDX block table is too small for its virtual size. ${REEXPORT}`);
  const entries = await reader.readExact(bat.offset, total * 8, 'VHDX block table');
  for (let i = 0; i < total; i++) {
    if ((i + 1) % (chunkRatio + 1) === 0) continue; // sector bitmap entry (differencing disks only)
    const v = entries.readBigUInt64LE(i * 8);
    const state = Number(v & 7n);
    if (state === 7) throw diskError('DiskIsDifferencing', DIFFERENCING);
    if (state !== 6) continue;
    const at = Number(v >> 20n) * MiB;
    if (at + blockSize > fileSize) {
      throw diskError(
        'DiskTruncated',
        `The file is truncated: a VHDX data block is declared at byte ${at} but the file is only ${fileSize} bytes long. Upload the complete file again.`,
      );
    }
  }
  return { virtualSize, details: { blockSize, logicalSectorSize } };
}
