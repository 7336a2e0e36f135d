// qcow2 (versions 2 and 3). Header fields are big-endian.
import { diskError } from '../errors.js';
import { u64 } from './reader.js';
import { excerpt, type FormatContext, type FormatResult } from './types.js';

const INCOMPAT_DIRTY = 1n << 0n;
const INCOMPAT_CORRUPT = 1n << 1n;
const INCOMPAT_DATA_FILE = 1n << 2n;
const INCOMPAT_COMPRESSION = 1n << 3n;
const INCOMPAT_EXTL2 = 1n << 4n;
const KNOWN_INCOMPAT = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

const EXT_END = 0;
const EXT_CRYPTO_HEADER = 0x0537be77;
const EXT_DATA_FILE = 0x44415441;
const MAX_L1_BYTES = 32 * 1024 * 1024; // qemu's QCOW_MAX_L1_SIZE
const OFFSET_MASK = 0x00fffffffffffe00n;
const COMPRESSED = 1n << 62n;

const CONVERT_HINT = 'Convert it on a trusted machine with "qemu-img convert -O qcow2 <source> <standalone.qcow2>" and upload the standalone file.';

export async function inspectQcow2(ctx: FormatContext): Promise<FormatResult> {
  const { reader, fileSize } = ctx;
  const h = await reader.readExact(0, 72, 'qcow2 header');
  const version = h.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    throw diskError(
      'DiskUnsupportedVersion',
      `This qcow2 image declares version ${version}; only versions 2 and 3 are accepted. Convert it with a current qemu-img ("qemu-img convert -O qcow2 -o compat=1.1") and upload again.`,
    );
  }
  const backingOffset = u64(h, 8, false, 'backing file offset');
  const backingSize = h.readUInt32BE(16);
  if (backingOffset !== 0) {
    const name = backingSize > 0 && backingSize <= 1023 ? (await reader.read(backingOffset, backingSize)).toString('latin1') : '';
    throw diskError(
      'DiskHasBackingFile',
      `This qcow2 image depends on a backing file${name ? ` ("${excerpt(name)}")` : ''}, which is not part of the upload and will never be opened. ${CONVERT_HINT}`,
    );
  }
  const clusterBits = h.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) {
    throw diskError(
      'DiskCorrupt',
      `This qcow2 image declares a cluster size of 2^${clusterBits} bytes (valid: 512 B to 2 MiB). The file is damaged or crafted.`,
    );
  }
  const clusterSize = 2 ** clusterBits;
  const size = u64(h, 24, false, 'virtual size');
  const cryptMethod = h.readUInt32BE(32);
  if (cryptMethod !== 0) {
    throw diskError(
      'DiskEncrypted',
      `This qcow2 image is encrypted (${cryptMethod === 1 ? 'legacy AES' : cryptMethod === 2 ? 'LUKS' : `method ${cryptMethod}`}). Encrypted images cannot be imported: decrypt it with "qemu-img convert" on a trusted machine and upload the unencrypted result.`,
    );
  }

  let headerLength = 72;
  let extL2 = false;
  let compressionType = 'zlib';
  if (version === 3) {
    const h3 = await reader.readExact(0, 104, 'qcow2 version 3 header');
    const incompat = h3.readBigUInt64BE(72);
    if (incompat & INCOMPAT_DATA_FILE) {
      throw diskError(
        'DiskHasExternalDataFile',
        `This qcow2 image keeps its data in an external data file (incompatible feature "data-file"), which is not part of the upload and will never be opened. ${CONVERT_HINT}`,
      );
    }
    const unknown = incompat & ~KNOWN_INCOMPAT;
    if (unknown) {
      throw diskError(
        'DiskUnsupportedFeature',
        `This qcow2 image uses unknown incompatible feature bits (0x${unknown.toString(16)}) that this service cannot verify. Convert it with "qemu-img convert -O qcow2 -o compat=1.1" on a trusted machine and upload again.`,
      );
    }
    if (incompat & INCOMPAT_CORRUPT) {
      throw diskError(
        'DiskCorrupt',
        'This qcow2 image is marked corrupt by qemu. Repair it with "qemu-img check -r all" on a trusted machine, or re-export it, and upload again.',
      );
    }
    extL2 = (incompat & INCOMPAT_EXTL2) !== 0n;
    headerLength = h3.readUInt32BE(100);
    if (headerLength < 104 || headerLength > clusterSize || headerLength % 8 !== 0) {
      throw diskError('DiskCorrupt', `This qcow2 image declares a header length of ${headerLength} bytes, which is invalid. The file is damaged or crafted.`);
    }
    if (incompat & INCOMPAT_COMPRESSION) compressionType = 'zstd';
  }
  if (clusterSize > fileSize) {
    throw diskError(
      'DiskTruncated',
      `The file is truncated: it is ${fileSize} bytes, smaller than one qcow2 cluster (${clusterSize} bytes). Upload the complete file again.`,
    );
  }

  // Header extensions live in the first cluster, after the header.
  const first = await reader.readExact(0, clusterSize, 'first qcow2 cluster');
  let off = headerLength;
  for (let i = 0; i < 1024 && off + 8 <= clusterSize; i++) {
    const type = first.readUInt32BE(off);
    const len = first.readUInt32BE(off + 4);
    if (type === EXT_END) break;
    if (off + 8 + len > clusterSize) throw diskError('DiskCorrupt', 'A qcow2 header extension runs past the first cluster. The file is damaged or crafted.');
    if (type === EXT_DATA_FILE) {
      const name = first.subarray(off + 8, off + 8 + len).toString('latin1');
      throw diskError(
        'DiskHasExternalDataFile',
        `This qcow2 image names an external data file ("${excerpt(name)}"), which is not part of the upload and will never be opened. ${CONVERT_HINT}`,
      );
    }
    if (type === EXT_CRYPTO_HEADER) {
      throw diskError(
        'DiskEncrypted',
        'This qcow2 image carries an encryption header. Decrypt it with "qemu-img convert" on a trusted machine and upload the unencrypted result.',
      );
    }
    off += 8 + Math.ceil(len / 8) * 8;
  }

  ctx.checkSize(size);

  const l1Size = h.readUInt32BE(36);
  const l1Offset = u64(h, 40, false, 'L1 table offset');
  const l2Entries = clusterSize / (extL2 ? 16 : 8);
  const needL1 = Math.ceil(size / (clusterSize * l2Entries));
  if (l1Size < needL1 || l1Size * 8 > MAX_L1_BYTES) {
    throw diskError('DiskCorrupt', `This qcow2 image's L1 table has ${l1Size} entries but its virtual size needs ${needL1}. The file is damaged or crafted.`);
  }
  if (l1Size > 0 && l1Offset % clusterSize !== 0) throw diskError('DiskCorrupt', 'This qcow2 image has a misaligned L1 table. The file is damaged or crafted.');
  const l1 = await reader.readExact(l1Offset, l1Size * 8, 'qcow2 L1 table');

  const refcountOffset = u64(h, 48, false, 'refcount table offset');
  const refcountClusters = h.readUInt32BE(56);
  if (refcountOffset + refcountClusters * clusterSize > fileSize) {
    throw diskError(
      'DiskTruncated',
      `The file is truncated: its qcow2 refcount table ends at byte ${refcountOffset + refcountClusters * clusterSize} but the file is only ${fileSize} bytes long. Upload the complete file again.`,
    );
  }
  for (let i = 0; i < l1Size; i++) {
    const l2Offset = Number(l1.readBigUInt64BE(i * 8) & OFFSET_MASK);
    if (l2Offset !== 0 && l2Offset + clusterSize > fileSize) {
      throw diskError(
        'DiskTruncated',
        `The file is truncated: a qcow2 L2 table is declared at byte ${l2Offset} but the file is only ${fileSize} bytes long. Upload the complete file again.`,
      );
    }
  }
  // Every data cluster the L2 tables name must start inside the file: a file cut short would otherwise read
  // as zeros where the data was, and the import would look complete.
  const entrySize = extL2 ? 16 : 8;
  const compressedOffsetMask = (1n << BigInt(62 - (clusterBits - 8))) - 1n;
  const end = BigInt(fileSize);
  for (let i = 0; i < l1Size; i++) {
    const l2Offset = Number(l1.readBigUInt64BE(i * 8) & OFFSET_MASK);
    if (l2Offset === 0) continue;
    const l2 = await reader.readTable(l2Offset, clusterSize, 'qcow2 L2 table');
    for (let j = 0; j < l2Entries; j++) {
      const entry = l2.readBigUInt64BE(j * entrySize);
      const dataOffset = entry & COMPRESSED ? entry & compressedOffsetMask : entry & OFFSET_MASK;
      if (dataOffset !== 0n && dataOffset >= end) {
        const guest = (i * l2Entries + j) * clusterSize;
        throw diskError(
          'DiskTruncated',
          `The file is truncated: the qcow2 data cluster for guest offset ${guest} is declared at byte ${dataOffset} but the file is only ${fileSize} bytes long, so part of the disk's data is missing. Upload the complete file again.`,
        );
      }
    }
  }
  const nbSnapshots = h.readUInt32BE(60);
  const snapshotsOffset = u64(h, 64, false, 'snapshot table offset');
  if (nbSnapshots > 0 && snapshotsOffset >= fileSize) {
    throw diskError('DiskTruncated', `The file is truncated: its qcow2 snapshot table starts past the end of the file. Upload the complete file again.`);
  }
  return { virtualSize: size, details: { version, clusterSize, snapshots: nbSnapshots, compressionType, extendedL2: extL2 } };
}
