// VMDK: only a single self-contained sparse extent ("KDMV" header, little-endian)
// whose embedded descriptor sits at sector 1 and names no other file.
import { diskError } from '../errors.js';
import { MiB, u64 } from './reader.js';
import { excerpt, type FormatContext, type FormatResult } from './types.js';

const ALLOWED_TYPES = ['monolithicSparse', 'streamOptimized'];
const GD_AT_END = 0xffffffffffffffffn;
const EXTENT_RE = /^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)")?(?:\s+(\d+))?/;
const DESCRIPTOR_TEXT = '# Disk DescriptorFile';

export const isVmdkDescriptorText = (head: Buffer): boolean => head.toString('latin1', 0, 64).trimStart().startsWith(DESCRIPTOR_TEXT);

const EXTERNAL_HINT =
  'Only a single self-contained VMDK (monolithicSparse or streamOptimized) can be imported. Export the VM as an OVA/streamOptimized disk, or convert it with "qemu-img convert -O vmdk -o subformat=streamOptimized" on a trusted machine, and upload that file.';

interface Descriptor {
  createType: string;
  extents: { access: string; sectors: number; type: string; name: string }[];
}

function parseDescriptor(text: string, embedded: boolean): Descriptor {
  const extents: Descriptor['extents'] = [];
  let createType = '';
  let parentHint: string | undefined;
  let parentCid = 'ffffffff';
  let encrypted = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = EXTENT_RE.exec(line);
    if (m) {
      extents.push({ access: m[1]!, sectors: Number(m[2]), type: m[3]!.toUpperCase(), name: m[4] ?? '' });
      continue;
    }
    const kv = /^([\w.]+)\s*=\s*"?([^"]*)"?\s*$/.exec(line);
    if (!kv) continue;
    const key = kv[1]!.toLowerCase();
    if (key === 'createtype') createType = kv[2]!;
    else if (key === 'parentfilenamehint') parentHint = kv[2]!;
    else if (key === 'parentcid') parentCid = kv[2]!.toLowerCase();
    else if (key.startsWith('encryption.') || key.startsWith('ddb.encryption') || key.includes('keysafe')) encrypted = true;
  }
  // Extents first: pointing at other files is the dangerous part.
  if (!embedded && extents.length > 0) {
    throw diskError(
      'DiskHasExternalExtent',
      `This VMDK is only a descriptor: its data lives in other files (${extents.map((e) => `${e.type} "${excerpt(e.name, 40)}"`).join(', ')}) that are not part of the upload and will never be opened. ${EXTERNAL_HINT}`,
    );
  }
  if (!embedded) throw diskError('DiskCorrupt', `This VMDK descriptor lists no extents. ${EXTERNAL_HINT}`);
  const bad = extents.find((e) => e.type !== 'SPARSE' || /[/\\:]/.test(e.name));
  if (extents.length !== 1 || bad) {
    const shown = bad ?? extents[1] ?? extents[0];
    throw diskError(
      'DiskHasExternalExtent',
      `This VMDK's embedded descriptor lists ${extents.length} extent(s)${shown ? `, including ${shown.type} "${excerpt(shown.name, 40)}"` : ''}; only the single embedded sparse extent is allowed, and other files are never opened. ${EXTERNAL_HINT}`,
    );
  }
  if (parentHint !== undefined || parentCid !== 'ffffffff') {
    throw diskError(
      'DiskHasBackingFile',
      `This VMDK is a delta disk of a parent${parentHint ? ` ("${excerpt(parentHint, 60)}")` : ''} that is not part of the upload. Consolidate the snapshots (or export the VM) and upload the resulting disk.`,
    );
  }
  if (encrypted) throw diskError('DiskEncrypted', 'This VMDK is encrypted. Remove VM encryption in vSphere/Workstation, export the disk again and upload it.');
  if (!ALLOWED_TYPES.includes(createType)) {
    throw diskError(
      'DiskUnsupportedSubformat',
      `This VMDK has createType "${excerpt(createType, 40)}"; only monolithicSparse and streamOptimized are accepted. ${EXTERNAL_HINT}`,
    );
  }
  return { createType, extents };
}

export async function inspectVmdk(ctx: FormatContext): Promise<FormatResult> {
  const { reader, fileSize, head } = ctx;
  if (isVmdkDescriptorText(head)) {
    if (fileSize > MiB) throw diskError('DiskHasExternalExtent', `This VMDK descriptor file is larger than 1 MiB. ${EXTERNAL_HINT}`);
    parseDescriptor((await reader.read(0, fileSize)).toString('latin1'), false);
    throw diskError('DiskHasExternalExtent', `This file is a VMDK descriptor without data. ${EXTERNAL_HINT}`);
  }
  const h = await reader.readExact(0, 512, 'VMDK sparse header');
  const version = h.readUInt32LE(4);
  if (version < 1 || version > 3)
    throw diskError('DiskUnsupportedVersion', `This VMDK declares sparse header version ${version}; versions 1 to 3 are supported. ${EXTERNAL_HINT}`);
  const capacitySectors = u64(h, 12, true, 'capacity');
  const grainSectors = u64(h, 20, true, 'grain size');
  const descOffset = u64(h, 28, true, 'descriptor offset');
  const descSectors = u64(h, 36, true, 'descriptor size');
  const gtesPerGt = h.readUInt32LE(44);
  const rawGd = h.readBigUInt64LE(56);
  const overhead = u64(h, 64, true, 'overhead');

  if (descOffset !== 1 || descSectors === 0 || descSectors * 512 > MiB) {
    throw diskError(
      'DiskHasExternalExtent',
      `This VMDK's embedded descriptor is not where it must be (sector ${descOffset}, ${descSectors} sectors; expected at sector 1 and at most 1 MiB). ${EXTERNAL_HINT}`,
    );
  }
  const descBuf = await reader.readExact(512, descSectors * 512, 'VMDK embedded descriptor');
  const nul = descBuf.indexOf(0);
  const desc = parseDescriptor(descBuf.toString('latin1', 0, nul === -1 ? descBuf.length : nul), true);

  const virtualSize = capacitySectors * 512;
  ctx.checkSize(virtualSize);
  if (desc.extents[0]!.sectors !== capacitySectors) {
    throw diskError(
      'DiskCorrupt',
      `This VMDK's descriptor (${desc.extents[0]!.sectors} sectors) and header (${capacitySectors} sectors) disagree on the size. ${EXTERNAL_HINT}`,
    );
  }
  if (grainSectors === 0 || grainSectors > 0x200000 || (grainSectors & (grainSectors - 1)) !== 0 || gtesPerGt === 0 || gtesPerGt > 0x100000) {
    throw diskError('DiskCorrupt', `This VMDK declares an invalid grain size (${grainSectors} sectors) or grain table size (${gtesPerGt}). ${EXTERNAL_HINT}`);
  }
  let gdOffset: number;
  if (rawGd === GD_AT_END) {
    const footer = await reader.read(fileSize - 1024, 512);
    if (footer.length < 512 || footer.toString('latin1', 0, 4) !== 'KDMV') {
      throw diskError('DiskTruncated', 'This streamOptimized VMDK has no footer at its end, so the upload is incomplete. Upload the complete file again.');
    }
    gdOffset = u64(footer, 56, true, 'grain directory offset');
  } else {
    gdOffset = u64(h, 56, true, 'grain directory offset');
  }
  if (overhead * 512 > fileSize) {
    throw diskError(
      'DiskTruncated',
      `The file is truncated: this VMDK declares ${overhead * 512} bytes of metadata but the file is only ${fileSize} bytes long. Upload the complete file again.`,
    );
  }
  const gtCount = Math.ceil(capacitySectors / grainSectors / gtesPerGt);
  const gd = await reader.readExact(gdOffset * 512, gtCount * 4, 'VMDK grain directory');
  for (let i = 0; i < gtCount; i++) {
    const gt = gd.readUInt32LE(i * 4);
    if (gt !== 0 && gt * 512 + gtesPerGt * 4 > fileSize) {
      throw diskError(
        'DiskTruncated',
        `The file is truncated: a VMDK grain table lies past the end of the file (${fileSize} bytes). Upload the complete file again.`,
      );
    }
  }
  // Every grain a grain table names must start inside the file (a file cut short would read as zeros).
  // Values 0 (never written) and 1 (a zeroed grain) name no data.
  for (let i = 0; i < gtCount; i++) {
    const gtSector = gd.readUInt32LE(i * 4);
    if (gtSector === 0) continue;
    const gt = await reader.readTable(gtSector * 512, gtesPerGt * 4, 'VMDK grain table');
    for (let j = 0; j < gtesPerGt; j++) {
      const grain = gt.readUInt32LE(j * 4);
      if (grain > 1 && grain * 512 >= fileSize) {
        throw diskError(
          'DiskTruncated',
          `The file is truncated: the VMDK grain for guest offset ${(i * gtesPerGt + j) * grainSectors * 512} is declared at byte ${grain * 512} but the file is only ${fileSize} bytes long, so part of the disk's data is missing. Upload the complete file again.`,
        );
      }
    }
  }
  return { virtualSize, details: { createType: desc.createType, version, grainSize: grainSectors * 512 } };
}
