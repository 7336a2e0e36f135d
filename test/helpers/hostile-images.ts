// Builds a corpus of valid and hostile disk images in a temp dir, with
// qemu-img and small byte-level edits (nothing binary is committed). Hostile
// images refer to a canary file whose marker must never leak into converted
// output.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, open, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DiskErrorCode } from '../../src/diskformat/errors.js';
import type { DiskFormat } from '../../src/diskformat/inspect/index.js';
import { crc32c } from '../../src/diskformat/inspect/reader.js';
import { vhdChecksum } from '../../src/diskformat/inspect/vhd.js';
import { VHDX_GUIDS } from '../../src/diskformat/inspect/vhdx.js';

const run = promisify(execFile);

export const MiB = 1024 * 1024;
export const DATA_SIZE = 4 * MiB;

export interface ValidCase {
  kind: 'valid';
  name: string;
  file: string;
  claimed?: DiskFormat;
  format: DiskFormat;
  virtualSize: number;
  details?: Record<string, string | number | boolean>;
}

export interface HostileCase {
  kind: 'hostile';
  name: string;
  file: string;
  claimed?: DiskFormat;
  maxVirtualSize?: number;
  code: DiskErrorCode;
  /** A fragment of the message IT staff will read. */
  message: string;
}

export type Case = ValidCase | HostileCase;

export interface Corpus {
  dir: string;
  canary: string;
  marker: string;
  base: string;
  cases: Case[];
}

export async function qemuImg(...args: string[]): Promise<string> {
  // LUKS key derivation times itself and gives up ("Unable to get accurate CPU usage") on a busy machine: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      const { stdout } = await run('qemu-img', args, { timeout: 20_000 });
      return stdout;
    } catch (err) {
      if (attempt >= 5 || !/accurate CPU usage/.test(String((err as { stderr?: string }).stderr))) throw err;
    }
  }
}

async function patch(file: string, offset: number, data: Buffer): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

async function readAt(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf;
  } finally {
    await fh.close();
  }
}

const be32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const be64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
};
const le32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};
const le64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};

async function derive(src: string, dst: string, edit?: (f: string) => Promise<void>): Promise<string> {
  await copyFile(src, dst);
  if (edit) await edit(dst);
  return dst;
}

/** Replaces the embedded descriptor of a sparse VMDK (padded with NULs). */
async function setVmdkDescriptor(file: string, text: string): Promise<void> {
  const h = await readAt(file, 0, 512);
  const offset = Number(h.readBigUInt64LE(28)) * 512;
  const size = Number(h.readBigUInt64LE(36)) * 512;
  const buf = Buffer.alloc(size);
  buf.write(text, 'latin1');
  await patch(file, offset, buf);
}

async function getVmdkDescriptor(file: string): Promise<string> {
  const h = await readAt(file, 0, 512);
  const d = await readAt(file, Number(h.readBigUInt64LE(28)) * 512, Number(h.readBigUInt64LE(36)) * 512);
  return d.toString('latin1', 0, d.indexOf(0));
}

/** Rewrites a VHD footer (at `at`) with `edit` applied and a correct checksum. */
async function editVhdFooter(file: string, at: number, edit: (f: Buffer) => void): Promise<void> {
  const f = await readAt(file, at, 512);
  edit(f);
  f.writeUInt32BE(vhdChecksum(f, 64), 64);
  await patch(file, at, f);
}

async function fileSize(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

/** Rewrites both VHDX headers with `edit` applied and a correct CRC-32C. */
async function editVhdxHeaders(file: string, edit: (h: Buffer) => void): Promise<void> {
  for (const at of [64 * 1024, 128 * 1024]) {
    const h = await readAt(file, at, 4096);
    edit(h);
    h.writeUInt32LE(0, 4);
    h.writeUInt32LE(crc32c(h), 4);
    await patch(file, at, h);
  }
}

/** Finds the VHDX metadata region offset via the first region table. */
async function vhdxMetadataOffset(file: string): Promise<number> {
  const t = await readAt(file, 192 * 1024, 64 * 1024);
  const n = t.readUInt32LE(8);
  for (let i = 0; i < n; i++) {
    const e = t.subarray(16 + i * 32, 48 + i * 32);
    if (e.subarray(0, 16).equals(VHDX_GUIDS.metadata)) return Number(e.readBigUInt64LE(16));
  }
  throw new Error('no VHDX metadata region');
}

/** Adds a parent locator item (relative_path = the canary) to a VHDX's metadata table. */
async function addVhdxParentLocator(file: string, parentName: string): Promise<void> {
  const metaOff = await vhdxMetadataOffset(file);
  const table = await readAt(file, metaOff, 64 * 1024);
  const count = table.readUInt16LE(10);
  let end = 64 * 1024;
  for (let i = 0; i < count; i++) {
    const e = table.subarray(32 + i * 32, 64 + i * 32);
    end = Math.max(end, e.readUInt32LE(16) + e.readUInt32LE(20));
  }
  const itemOffset = Math.ceil(end / 4096) * 4096;
  const key = Buffer.from('relative_path', 'utf16le');
  const value = Buffer.from(parentName, 'utf16le');
  const header = Buffer.alloc(20);
  Buffer.from('b04aefb7d19e4a81b78925b8e9445913', 'hex').copy(header, 0);
  header.writeUInt16LE(1, 18);
  const entry = Buffer.alloc(12);
  entry.writeUInt32LE(32, 0);
  entry.writeUInt32LE(32 + key.length, 4);
  entry.writeUInt16LE(key.length, 8);
  entry.writeUInt16LE(value.length, 10);
  const item = Buffer.concat([header, entry, Buffer.alloc(32 - 20 - 12), key, value]);
  await patch(file, metaOff + itemOffset, item);
  const e = Buffer.alloc(32);
  VHDX_GUIDS.parentLocator.copy(e, 0);
  e.writeUInt32LE(itemOffset, 16);
  e.writeUInt32LE(item.length, 20);
  e.writeUInt32LE(2 | 4, 24); // IsVirtualDisk | IsRequired
  await patch(file, metaOff + 32 + count * 32, e);
  const c = Buffer.alloc(2);
  c.writeUInt16LE(count + 1);
  await patch(file, metaOff + 10, c);
}

/** Sets bits in the VHDX file-parameters flags (bit 1 = HasParent). */
async function setVhdxFileParameterFlags(file: string, flags: number): Promise<void> {
  const metaOff = await vhdxMetadataOffset(file);
  const table = await readAt(file, metaOff, 64 * 1024);
  const count = table.readUInt16LE(10);
  for (let i = 0; i < count; i++) {
    const e = table.subarray(32 + i * 32, 64 + i * 32);
    if (e.subarray(0, 16).equals(VHDX_GUIDS.fileParameters)) {
      await patch(file, metaOff + e.readUInt32LE(16) + 4, le32(flags));
      return;
    }
  }
  throw new Error('no VHDX file parameters');
}

/** Rewrites both VHDX region tables with `edit` applied and a correct CRC-32C. */
async function editVhdxRegionTables(file: string, edit: (t: Buffer) => void): Promise<void> {
  for (const at of [192 * 1024, 256 * 1024]) {
    const t = await readAt(file, at, 64 * 1024);
    edit(t);
    t.writeUInt32LE(0, 4);
    t.writeUInt32LE(crc32c(t), 4);
    await patch(file, at, t);
  }
}

/** Finds a VHDX region's file offset via the first region table. */
async function vhdxRegionOffset(file: string, guid: Buffer): Promise<number> {
  const t = await readAt(file, 192 * 1024, 64 * 1024);
  const n = t.readUInt32LE(8);
  for (let i = 0; i < n; i++) {
    const e = t.subarray(16 + i * 32, 48 + i * 32);
    if (e.subarray(0, 16).equals(guid)) return Number(e.readBigUInt64LE(16));
  }
  throw new Error('VHDX region not found');
}

/** Appends an entry (unknown GUID, IsRequired) to a VHDX's metadata table. */
async function addVhdxUnknownRequiredItem(file: string): Promise<void> {
  const metaOff = await vhdxRegionOffset(file, VHDX_GUIDS.metadata);
  const count = (await readAt(file, metaOff + 10, 2)).readUInt16LE(0);
  const e = Buffer.alloc(32);
  randomBytes(16).copy(e, 0);
  e.writeUInt32LE(64 * 1024, 16);
  e.writeUInt32LE(8, 20);
  e.writeUInt32LE(4, 24); // IsRequired
  await patch(file, metaOff + 32 + count * 32, e);
  const c = Buffer.alloc(2);
  c.writeUInt16LE(count + 1);
  await patch(file, metaOff + 10, c);
}

/** Overwrites a VHDX's file-parameters block size. */
async function setVhdxBlockSize(file: string, blockSize: number): Promise<void> {
  const metaOff = await vhdxRegionOffset(file, VHDX_GUIDS.metadata);
  const table = await readAt(file, metaOff, 64 * 1024);
  const count = table.readUInt16LE(10);
  for (let i = 0; i < count; i++) {
    const e = table.subarray(32 + i * 32, 64 + i * 32);
    if (e.subarray(0, 16).equals(VHDX_GUIDS.fileParameters)) {
      await patch(file, metaOff + e.readUInt32LE(16), le32(blockSize));
      return;
    }
  }
  throw new Error('no VHDX file parameters');
}

/** Rewrites a dynamic VHD's "cxsparse" header with `edit` applied and a correct checksum. */
async function editVhdDynamicHeader(file: string, edit: (h: Buffer) => void): Promise<void> {
  const footer = await readAt(file, 0, 512);
  const at = Number(footer.readBigUInt64BE(16));
  const h = await readAt(file, at, 1024);
  edit(h);
  h.writeUInt32BE(vhdChecksum(h, 36), 36);
  await patch(file, at, h);
}

/** Locates a VHDX metadata item: where its table entry and its data are in the file. */
async function vhdxItem(file: string, guid: Buffer): Promise<{ entryAt: number; dataAt: number }> {
  const metaOff = await vhdxRegionOffset(file, VHDX_GUIDS.metadata);
  const table = await readAt(file, metaOff, 64 * 1024);
  for (let i = 0; i < table.readUInt16LE(10); i++) {
    const e = table.subarray(32 + i * 32, 64 + i * 32);
    if (e.subarray(0, 16).equals(guid)) return { entryAt: metaOff + 32 + i * 32, dataAt: metaOff + e.readUInt32LE(16) };
  }
  throw new Error('VHDX metadata item not found');
}

export async function buildCorpus(): Promise<Corpus> {
  const dir = await mkdtemp(join(tmpdir(), 'labforge-hostile-'));
  const marker = `CANARY-${randomBytes(12).toString('hex')}`;
  const canary = join(dir, 'canary.bin');
  const p = (name: string) => join(dir, name);

  // The data-file image must be created first: qemu-img creates (and sizes) the
  // data file itself, and the canary content is written over it afterwards.
  // data_file_raw=on makes qemu read the data file as the guest disk, so
  // following it would copy the canary into the output.
  await qemuImg('create', '-f', 'qcow2', '-o', `data_file=${canary},data_file_raw=on`, p('qcow2-data-file.qcow2'), '4M');
  await writeFile(canary, Buffer.from(`${marker}\n`.repeat(Math.ceil(DATA_SIZE / (marker.length + 1)))).subarray(0, DATA_SIZE));

  // Base raw data: a recognisable, non-zero pattern with no format signature.
  const base = p('base.raw');
  const data = Buffer.alloc(DATA_SIZE);
  for (let i = 0; i < DATA_SIZE; i += 64) data.write(`labforge-data-block-${String(i).padStart(10, '0')}-`, i, 'latin1');
  await writeFile(base, data);

  // Valid images.
  await Promise.all([
    qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size', base, p('fixed.vhd')),
    qemuImg('convert', '-f', 'raw', '-O', 'vpc', base, p('dynamic.vhd')),
    qemuImg('convert', '-f', 'raw', '-O', 'vhdx', base, p('disk.vhdx')),
    qemuImg('convert', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=0.10', base, p('v2.qcow2')),
    qemuImg('convert', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=1.1', base, p('v3.qcow2')),
    qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=1.1', base, p('compressed.qcow2')),
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', base, p('sparse.vmdk')),
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', base, p('stream.vmdk')),
    qemuImg('create', '-f', 'qcow2', '-b', canary, '-F', 'raw', p('qcow2-backing.qcow2'), '4M'),
    qemuImg(
      'create',
      '-f',
      'qcow2',
      '-u',
      '-b',
      `json:{"driver":"raw","file":{"driver":"file","filename":"${canary}"}}`,
      '-F',
      'raw',
      p('qcow2-backing-json.qcow2'),
      '4M',
    ),
    qemuImg(
      'create',
      '-f',
      'qcow2',
      '--object',
      'secret,id=s0,data=labforge-test',
      '-o',
      'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10',
      p('luks.qcow2'),
      '4M',
    ),
  ]);
  // The dynamic VHD's virtual size follows its CHS geometry (qemu creator "qemu").
  const dynamicSize = Number((JSON.parse(await qemuImg('info', '-f', 'vpc', '--output=json', p('dynamic.vhd'))) as { 'virtual-size': number })['virtual-size']);

  const cases: Case[] = [
    { kind: 'valid', name: 'raw', file: base, format: 'raw', virtualSize: DATA_SIZE },
    { kind: 'valid', name: 'raw (claimed raw)', file: base, claimed: 'raw', format: 'raw', virtualSize: DATA_SIZE },
    {
      kind: 'valid',
      name: 'fixed VHD (force_size)',
      file: p('fixed.vhd'),
      claimed: 'vhd',
      format: 'vhd',
      virtualSize: DATA_SIZE,
      details: { subformat: 'fixed' },
    },
    { kind: 'valid', name: 'dynamic VHD', file: p('dynamic.vhd'), format: 'vhd', virtualSize: dynamicSize, details: { subformat: 'dynamic' } },
    { kind: 'valid', name: 'VHDX', file: p('disk.vhdx'), claimed: 'vhdx', format: 'vhdx', virtualSize: DATA_SIZE },
    { kind: 'valid', name: 'qcow2 v2', file: p('v2.qcow2'), format: 'qcow2', virtualSize: DATA_SIZE, details: { version: 2, clusterSize: 65536 } },
    { kind: 'valid', name: 'qcow2 v3', file: p('v3.qcow2'), claimed: 'qcow2', format: 'qcow2', virtualSize: DATA_SIZE, details: { version: 3 } },
    { kind: 'valid', name: 'qcow2 v3, compressed clusters', file: p('compressed.qcow2'), claimed: 'qcow2', format: 'qcow2', virtualSize: DATA_SIZE },
    {
      kind: 'valid',
      name: 'VMDK monolithicSparse',
      file: p('sparse.vmdk'),
      format: 'vmdk',
      virtualSize: DATA_SIZE,
      details: { createType: 'monolithicSparse' },
    },
    {
      kind: 'valid',
      name: 'VMDK streamOptimized',
      file: p('stream.vmdk'),
      claimed: 'vmdk',
      format: 'vmdk',
      virtualSize: DATA_SIZE,
      details: { createType: 'streamOptimized' },
    },
  ];
  const hostile = (c: Omit<HostileCase, 'kind'>) => cases.push({ kind: 'hostile', ...c });

  // --- qcow2 ---
  hostile({ name: 'qcow2 with backing file = canary', file: p('qcow2-backing.qcow2'), code: 'DiskHasBackingFile', message: 'backing file' });
  hostile({ name: 'qcow2 with json: pseudo-filename backing file', file: p('qcow2-backing-json.qcow2'), code: 'DiskHasBackingFile', message: 'json:' });
  hostile({ name: 'qcow2 with external data-file = canary', file: p('qcow2-data-file.qcow2'), code: 'DiskHasExternalDataFile', message: 'external data file' });
  hostile({
    name: '"raw" upload that is really qcow2 with a backing file',
    file: p('qcow2-backing.qcow2'),
    claimed: 'raw',
    code: 'DiskFormatMismatch',
    message: 'declared as raw but its content is qcow2',
  });
  // A guest wrote a qcow2 header (with a backing file) onto its raw disk.
  const header = await readAt(p('qcow2-backing.qcow2'), 0, 4096);
  hostile({
    name: 'raw disk whose first sector is a qcow2 header naming the canary',
    file: await derive(base, p('raw-qcow2-header.raw'), (f) => patch(f, 0, header)),
    code: 'DiskHasBackingFile',
    message: 'canary.bin',
  });
  hostile({
    name: 'qcow2 version 4',
    file: await derive(p('v3.qcow2'), p('v4.qcow2'), (f) => patch(f, 4, be32(4))),
    code: 'DiskUnsupportedVersion',
    message: 'version 4',
  });
  hostile({
    name: 'qcow2 with unknown incompatible feature bit',
    file: await derive(p('v3.qcow2'), p('incompat.qcow2'), (f) => patch(f, 72, be64(1n << 10n))),
    code: 'DiskUnsupportedFeature',
    message: 'unknown incompatible feature',
  });
  hostile({
    name: 'qcow2 marked corrupt',
    file: await derive(p('v3.qcow2'), p('corrupt-bit.qcow2'), (f) => patch(f, 72, be64(2n))),
    code: 'DiskCorrupt',
    message: 'marked corrupt',
  });
  hostile({
    name: 'qcow2 v2 with crypt_method=1 (AES)',
    file: await derive(p('v2.qcow2'), p('aes.qcow2'), (f) => patch(f, 32, be32(1))),
    code: 'DiskEncrypted',
    message: 'legacy AES',
  });
  hostile({ name: 'qcow2 LUKS-encrypted', file: p('luks.qcow2'), code: 'DiskEncrypted', message: 'LUKS' });
  hostile({
    name: 'qcow2 declaring 1 PiB',
    file: await derive(p('v3.qcow2'), p('huge.qcow2'), (f) => patch(f, 24, be64(1n << 50n))),
    code: 'DiskTooLarge',
    message: 'above the limit',
  });
  hostile({
    name: 'qcow2 declaring 2^63 bytes',
    file: await derive(p('v3.qcow2'), p('u64.qcow2'), (f) => patch(f, 24, be64(1n << 63n))),
    code: 'DiskCorrupt',
    message: 'larger than any real disk',
  });
  hostile({ name: 'qcow2 above a configured 1 MiB limit', file: p('v3.qcow2'), maxVirtualSize: MiB, code: 'DiskTooLarge', message: '1048576 bytes' });
  hostile({
    name: 'qcow2 declaring size 0',
    file: await derive(p('v3.qcow2'), p('zero.qcow2'), (f) => patch(f, 24, be64(0n))),
    code: 'DiskCorrupt',
    message: 'virtual size of 0',
  });
  hostile({
    name: 'qcow2 truncated before its L1 table',
    file: await derive(p('v3.qcow2'), p('trunc-l1.qcow2'), (f) => truncate(f, 128 * 1024)),
    code: 'DiskTruncated',
    message: 'L1 table',
  });
  hostile({
    name: 'qcow2 truncated inside its header',
    file: await derive(p('v3.qcow2'), p('trunc-header.qcow2'), (f) => truncate(f, 90)),
    code: 'DiskTruncated',
    message: 'header',
  });
  // Cut at half the file: the tables are all there, the data after the cut is not (it would read as zeros).
  const half = (f: string) => stat(f).then((st) => truncate(f, Math.floor(st.size / 2)));
  hostile({
    name: 'qcow2 cut at half its data',
    file: await derive(p('v3.qcow2'), p('half.qcow2'), half),
    code: 'DiskTruncated',
    message: 'data cluster',
  });
  hostile({
    name: 'compressed qcow2 cut short of its last compressed clusters',
    file: await derive(p('compressed.qcow2'), p('cut-compressed.qcow2'), (f) => stat(f).then((st) => truncate(f, Math.floor(st.size * 0.9)))),
    code: 'DiskTruncated',
    message: 'data cluster',
  });
  hostile({
    name: 'sparse VMDK cut at half its grains',
    file: await derive(p('sparse.vmdk'), p('half.vmdk'), half),
    code: 'DiskTruncated',
    message: 'grain',
  });
  hostile({
    name: 'VHDX cut at half its data blocks',
    file: await derive(p('disk.vhdx'), p('half.vhdx'), half),
    code: 'DiskTruncated',
    message: 'data block',
  });
  hostile({
    name: 'qcow2 whose L2 tables were cut off',
    file: await derive(p('v3.qcow2'), p('trunc-l2.qcow2'), (f) => truncate(f, 0x40000)),
    code: 'DiskTruncated',
    message: 'L2 table',
  });

  // --- polyglots ---
  const fixedFooter = await readAt(p('fixed.vhd'), DATA_SIZE, 512);
  hostile({
    name: 'polyglot: qcow2 with a VHD footer appended',
    file: await derive(p('v3.qcow2'), p('qcow2-vhd-footer.qcow2'), async (f) => patch(f, await fileSize(f), fixedFooter)),
    code: 'DiskFormatAmbiguous',
    message: 'qcow2 and VHD',
  });
  hostile({
    name: 'polyglot: fixed VHD whose first sector is a qcow2 header',
    file: await derive(p('fixed.vhd'), p('vhd-qcow2-sector0.vhd'), (f) => patch(f, 0, header)),
    claimed: 'vhd',
    code: 'DiskFormatAmbiguous',
    message: 'polyglot',
  });

  // --- VHD ---
  const dynSize = await fileSize(p('dynamic.vhd'));
  hostile({
    name: 'VHD differencing disk (type 4)',
    file: await derive(p('dynamic.vhd'), p('differencing.vhd'), async (f) => {
      const set4 = (b: Buffer) => b.writeUInt32BE(4, 60);
      await editVhdFooter(f, 0, set4);
      await editVhdFooter(f, dynSize - 512, set4);
    }),
    code: 'DiskIsDifferencing',
    message: 'differencing disk',
  });
  hostile({
    name: 'VHD with bad footer checksum',
    file: await derive(p('fixed.vhd'), p('bad-checksum.vhd'), async (f) => {
      const c = await readAt(f, DATA_SIZE + 64, 4);
      await patch(f, DATA_SIZE + 64, be32(c.readUInt32BE(0) ^ 0x5a5a));
    }),
    code: 'DiskCorrupt',
    message: 'checksum',
  });
  hostile({
    name: 'fixed VHD shorter than its declared size',
    file: await derive(p('fixed.vhd'), p('trunc-fixed.vhd'), async (f) => {
      await truncate(f, 2 * MiB);
      await patch(f, 2 * MiB, fixedFooter);
    }),
    code: 'DiskTruncated',
    message: 'fixed VHD declares',
  });
  hostile({
    name: 'dynamic VHD cut in half',
    file: await derive(p('dynamic.vhd'), p('trunc-dynamic.vhd'), (f) => truncate(f, Math.floor(dynSize / 2))),
    code: 'DiskTruncated',
    message: 'missing its footer',
  });

  // --- VHDX ---
  hostile({
    name: 'VHDX with a parent locator naming the canary',
    file: await derive(p('disk.vhdx'), p('parent-locator.vhdx'), (f) => addVhdxParentLocator(f, 'canary.bin')),
    code: 'DiskIsDifferencing',
    message: 'differencing disk',
  });
  hostile({
    name: 'VHDX with the HasParent flag',
    file: await derive(p('disk.vhdx'), p('has-parent.vhdx'), (f) => setVhdxFileParameterFlags(f, 2)),
    code: 'DiskIsDifferencing',
    message: 'parent disk',
  });
  hostile({
    name: 'VHDX with a log needing replay',
    file: await derive(p('disk.vhdx'), p('dirty-log.vhdx'), (f) => editVhdxHeaders(f, (h) => randomBytes(16).copy(h, 48))),
    code: 'DiskUnsupportedFeature',
    message: 'log',
  });
  hostile({
    name: 'VHDX cut to 2 MiB',
    file: await derive(p('disk.vhdx'), p('trunc.vhdx'), (f) => truncate(f, 2 * MiB)),
    code: 'DiskTruncated',
    message: 'region ends at byte',
  });

  // --- VMDK ---
  const desc = await getVmdkDescriptor(p('sparse.vmdk'));
  const extentLine = /^RW \d+ SPARSE "[^"]*"$/m;
  if (!extentLine.test(desc)) throw new Error(`unexpected VMDK descriptor:\n${desc}`);
  const sectors = DATA_SIZE / 512;
  hostile({
    name: 'VMDK (capacity 0) whose embedded descriptor has a FLAT extent = canary',
    file: await derive(p('sparse.vmdk'), p('flat-extent.vmdk'), async (f) => {
      await setVmdkDescriptor(f, desc.replace(extentLine, `RW ${sectors} FLAT "${canary}" 0`).replace(/createType="[^"]*"/, 'createType="monolithicFlat"'));
      await patch(f, 12, le64(0n));
    }),
    code: 'DiskHasExternalExtent',
    message: 'FLAT',
  });
  hostile({
    name: 'VMDK with its sparse extent plus a second FLAT extent',
    file: await derive(p('sparse.vmdk'), p('two-extents.vmdk'), (f) =>
      setVmdkDescriptor(
        f,
        desc.replace(extentLine, (m) => `${m}\nRW ${sectors} FLAT "canary.bin" 0`),
      ),
    ),
    code: 'DiskHasExternalExtent',
    message: '2 extent(s)',
  });
  hostile({
    name: 'VMDK whose single sparse extent name contains "/"',
    file: await derive(p('sparse.vmdk'), p('slash-extent.vmdk'), (f) => setVmdkDescriptor(f, desc.replace(extentLine, `RW ${sectors} SPARSE "../canary.bin"`))),
    code: 'DiskHasExternalExtent',
    message: '../canary.bin',
  });
  const descriptorOnly = [
    '# Disk DescriptorFile',
    'version=1',
    'CID=fffffffe',
    'parentCID=ffffffff',
    'createType="monolithicFlat"',
    '',
    '# Extent description',
    `RW ${sectors} FLAT "canary.bin" 0`,
    '',
  ].join('\n');
  await writeFile(p('descriptor-only.vmdk'), descriptorOnly);
  hostile({
    name: 'plain-text descriptor-only VMDK with a FLAT extent = canary',
    file: p('descriptor-only.vmdk'),
    code: 'DiskHasExternalExtent',
    message: 'only a descriptor',
  });

  await writeFile(p('descriptor-huge.vmdk'), `${descriptorOnly}${'# padding padding padding padding padding padding padding\n'.repeat(20_000)}`);
  hostile({
    name: 'plain-text VMDK descriptor larger than 1 MiB',
    file: p('descriptor-huge.vmdk'),
    code: 'DiskHasExternalExtent',
    message: 'larger than 1 MiB',
  });
  hostile({
    name: 'VMDK sparse header version 4',
    file: await derive(p('sparse.vmdk'), p('v4.vmdk'), (f) => patch(f, 4, le32(4))),
    code: 'DiskUnsupportedVersion',
    message: 'version 4',
  });
  hostile({
    name: 'VMDK whose header and descriptor disagree on the size',
    file: await derive(p('sparse.vmdk'), p('capacity.vmdk'), (f) => patch(f, 12, le64(BigInt(2 * sectors)))),
    code: 'DiskCorrupt',
    message: 'disagree on the size',
  });
  hostile({
    name: 'streamOptimized VMDK with the grain directory at the end but no footer',
    file: await derive(p('stream.vmdk'), p('stream-no-footer.vmdk'), (f) => patch(f, 56, le64(0xffffffffffffffffn))),
    code: 'DiskTruncated',
    message: 'no footer',
  });
  hostile({
    name: 'VMDK whose grain table lies past EOF',
    file: await derive(p('sparse.vmdk'), p('gt-eof.vmdk'), async (f) => {
      const h = await readAt(f, 0, 512);
      await patch(f, Number(h.readBigUInt64LE(56)) * 512, le32(0x100000));
    }),
    code: 'DiskTruncated',
    message: 'grain table',
  });
  hostile({
    name: 'VMDK with createType twoGbMaxExtentSparse',
    file: await derive(p('sparse.vmdk'), p('twogb.vmdk'), (f) => setVmdkDescriptor(f, desc.replace(/createType="[^"]*"/, 'createType="twoGbMaxExtentSparse"'))),
    code: 'DiskUnsupportedSubformat',
    message: 'twoGbMaxExtentSparse',
  });
  hostile({
    name: 'VMDK with createType vmfs',
    file: await derive(p('sparse.vmdk'), p('vmfs.vmdk'), (f) => setVmdkDescriptor(f, desc.replace(/createType="[^"]*"/, 'createType="vmfs"'))),
    code: 'DiskUnsupportedSubformat',
    message: 'vmfs',
  });
  hostile({
    name: 'VMDK delta disk with parentFileNameHint = canary',
    file: await derive(p('sparse.vmdk'), p('delta.vmdk'), (f) =>
      setVmdkDescriptor(f, desc.replace(/parentCID=\w+/, `parentCID=12345678\nparentFileNameHint="${canary}"`)),
    ),
    code: 'DiskHasBackingFile',
    message: 'delta disk',
  });
  hostile({
    name: 'VMDK with encryption keys in its descriptor',
    file: await derive(p('sparse.vmdk'), p('encrypted.vmdk'), (f) =>
      setVmdkDescriptor(f, `${desc}encryption.keySafe = "vmware:key/list/(pair/(null/vmware:key))"\n`),
    ),
    code: 'DiskEncrypted',
    message: 'encrypted',
  });
  hostile({
    name: 'VMDK whose descriptor is not at sector 1',
    file: await derive(p('sparse.vmdk'), p('desc-misplaced.vmdk'), (f) => patch(f, 28, le64(2n))),
    code: 'DiskHasExternalExtent',
    message: 'not where it must be',
  });
  hostile({
    name: 'VMDK whose descriptor is larger than 1 MiB',
    file: await derive(p('sparse.vmdk'), p('desc-huge.vmdk'), (f) => patch(f, 36, le64(4096n))),
    code: 'DiskHasExternalExtent',
    message: 'at most 1 MiB',
  });
  hostile({
    name: 'VMDK cut to 32 KiB',
    file: await derive(p('sparse.vmdk'), p('trunc.vmdk'), (f) => truncate(f, 32 * 1024)),
    code: 'DiskTruncated',
    message: 'truncated',
  });

  // --- structural sanity (each check below has its own case) ---
  hostile({
    name: 'qcow2 with the data-file bit but no file name',
    file: await derive(p('v3.qcow2'), p('data-bit.qcow2'), (f) => patch(f, 72, be64(4n))),
    code: 'DiskHasExternalDataFile',
    message: 'incompatible feature "data-file"',
  });
  hostile({
    name: 'qcow2 naming a data file with the data-file bit cleared',
    file: await derive(p('qcow2-data-file.qcow2'), p('data-ext.qcow2'), (f) => patch(f, 72, be64(0n))),
    code: 'DiskHasExternalDataFile',
    message: 'canary.bin',
  });
  hostile({
    name: 'LUKS qcow2 with crypt_method patched to 0',
    file: await derive(p('luks.qcow2'), p('luks-hidden.qcow2'), (f) => patch(f, 32, be32(0))),
    code: 'DiskEncrypted',
    message: 'encryption header',
  });
  hostile({
    name: 'qcow2 with cluster_bits 31',
    file: await derive(p('v3.qcow2'), p('cluster-bits.qcow2'), (f) => patch(f, 20, be32(31))),
    code: 'DiskCorrupt',
    message: 'cluster size',
  });
  hostile({
    name: 'qcow2 with header length 50',
    file: await derive(p('v3.qcow2'), p('header-length.qcow2'), (f) => patch(f, 100, be32(50))),
    code: 'DiskCorrupt',
    message: 'header length',
  });
  hostile({
    name: 'qcow2 with a misaligned L1 table',
    file: await derive(p('v3.qcow2'), p('l1-misaligned.qcow2'), (f) => patch(f, 40, be64(0x30008n))),
    code: 'DiskCorrupt',
    message: 'misaligned L1',
  });
  hostile({
    name: 'qcow2 with an L1 table too small for its size',
    file: await derive(p('v3.qcow2'), p('l1-small.qcow2'), (f) => patch(f, 24, be64(1n << 40n))),
    code: 'DiskCorrupt',
    message: 'L1 table has',
  });
  hostile({
    name: 'qcow2 whose refcount table lies past EOF',
    file: await derive(p('v3.qcow2'), p('refcount-eof.qcow2'), (f) => patch(f, 48, be64(0x10000000n))),
    code: 'DiskTruncated',
    message: 'refcount table',
  });
  hostile({
    name: 'qcow2 shorter than one cluster',
    file: await derive(p('v3.qcow2'), p('trunc-cluster.qcow2'), (f) => truncate(f, 4096)),
    code: 'DiskTruncated',
    message: 'smaller than one qcow2 cluster',
  });
  hostile({
    name: 'VHD with an unknown disk type',
    file: await derive(p('fixed.vhd'), p('type7.vhd'), (f) => editVhdFooter(f, DATA_SIZE, (b) => b.writeUInt32BE(7, 60))),
    code: 'DiskCorrupt',
    message: 'unknown disk type 7',
  });
  hostile({
    name: 'dynamic VHD without its footer copy at offset 0',
    file: await derive(p('dynamic.vhd'), p('no-head-copy.vhd'), (f) => patch(f, 0, Buffer.alloc(512))),
    code: 'DiskCorrupt',
    message: 'no footer copy',
  });
  hostile({
    name: 'dynamic VHD with a bad dynamic-header checksum',
    file: await derive(p('dynamic.vhd'), p('dyn-checksum.vhd'), (f) => patch(f, 512 + 56, be32(0xdeadbeef))),
    code: 'DiskCorrupt',
    message: 'dynamic header checksum',
  });
  hostile({
    name: 'dynamic VHD whose block lies past the data area',
    file: await derive(p('dynamic.vhd'), p('dyn-block-eof.vhd'), async (f) => {
      const dyn = await readAt(f, 512, 1024);
      await patch(f, Number(dyn.readBigUInt64BE(16)), be32(0x100000));
    }),
    code: 'DiskTruncated',
    message: 'block 0',
  });
  hostile({
    name: 'VHDX shorter than its 1 MiB header section',
    file: await derive(p('disk.vhdx'), p('trunc-header.vhdx'), (f) => truncate(f, 512 * 1024)),
    code: 'DiskTruncated',
    message: '1 MiB header section',
  });
  hostile({
    name: 'VHDX version 2',
    file: await derive(p('disk.vhdx'), p('v2.vhdx'), (f) => editVhdxHeaders(f, (h) => h.writeUInt16LE(2, 66))),
    code: 'DiskUnsupportedVersion',
    message: 'version 2',
  });
  hostile({
    name: 'VHDX with both region tables damaged',
    file: await derive(p('disk.vhdx'), p('bad-regions.vhdx'), async (f) => {
      await patch(f, 192 * 1024 + 100, Buffer.from('x'));
      await patch(f, 256 * 1024 + 100, Buffer.from('x'));
    }),
    code: 'DiskCorrupt',
    message: 'region table',
  });
  hostile({
    name: 'VHDX with an unknown required region',
    file: await derive(p('disk.vhdx'), p('unknown-region.vhdx'), (f) =>
      editVhdxRegionTables(f, (t) => {
        const n = t.readUInt32LE(8);
        randomBytes(16).copy(t, 16 + n * 32);
        t.writeBigUInt64LE(BigInt(MiB), 16 + n * 32 + 16);
        t.writeUInt32LE(MiB, 16 + n * 32 + 24);
        t.writeUInt32LE(1, 16 + n * 32 + 28);
        t.writeUInt32LE(n + 1, 8);
      }),
    ),
    code: 'DiskUnsupportedFeature',
    message: 'required region of an unknown type',
  });
  hostile({
    name: 'VHDX with an unknown required metadata item',
    file: await derive(p('disk.vhdx'), p('unknown-item.vhdx'), addVhdxUnknownRequiredItem),
    code: 'DiskUnsupportedFeature',
    message: 'required metadata item of an unknown type',
  });
  hostile({
    name: 'VHDX with a 3 MiB block size',
    file: await derive(p('disk.vhdx'), p('block-size.vhdx'), (f) => setVhdxBlockSize(f, 3 * MiB)),
    code: 'DiskCorrupt',
    message: 'invalid block size',
  });
  hostile({
    name: 'VHDX with a partially-present block (differencing)',
    file: await derive(p('disk.vhdx'), p('partial-block.vhdx'), async (f) => patch(f, await vhdxRegionOffset(f, VHDX_GUIDS.bat), le64(7n))),
    code: 'DiskIsDifferencing',
    message: 'differencing disk',
  });
  hostile({
    name: 'VHDX whose data block lies past EOF',
    file: await derive(p('disk.vhdx'), p('block-eof.vhdx'), async (f) => patch(f, await vhdxRegionOffset(f, VHDX_GUIDS.bat), le64((4096n << 20n) | 6n))),
    code: 'DiskTruncated',
    message: 'data block',
  });

  hostile({
    name: 'qcow2 whose snapshot table lies past EOF',
    file: await derive(p('v3.qcow2'), p('snapshots-eof.qcow2'), async (f) => {
      await patch(f, 60, be32(1));
      await patch(f, 64, be64(0x10000000n));
    }),
    code: 'DiskTruncated',
    message: 'snapshot table',
  });
  hostile({
    name: 'qcow2 header extension running past the first cluster',
    file: await derive(p('v3.qcow2'), p('ext-overflow.qcow2'), async (f) => {
      const headerLength = (await readAt(f, 100, 4)).readUInt32BE(0);
      await patch(f, headerLength, Buffer.concat([be32(0x12345678), be32(0x20000)]));
    }),
    code: 'DiskCorrupt',
    message: 'header extension runs past',
  });
  hostile({
    name: 'fixed VHD with a footer copy at offset 0',
    file: await derive(p('fixed.vhd'), p('fixed-head-footer.vhd'), (f) => patch(f, 0, fixedFooter)),
    code: 'DiskCorrupt',
    message: 'footer at the start',
  });
  hostile({
    name: 'dynamic VHD whose two footers differ',
    file: await derive(p('dynamic.vhd'), p('footers-differ.vhd'), (f) => editVhdFooter(f, dynSize - 512, (b) => b.writeUInt32BE(12345, 24))),
    code: 'DiskCorrupt',
    message: 'footer copies',
  });
  hostile({
    name: 'dynamic VHD without its "cxsparse" header',
    file: await derive(p('dynamic.vhd'), p('no-cxsparse.vhd'), (f) => patch(f, 512, Buffer.from('notspars'))),
    code: 'DiskCorrupt',
    message: 'cxsparse',
  });
  hostile({
    name: 'dynamic VHD with a 3 MiB block size',
    file: await derive(p('dynamic.vhd'), p('dyn-block-size.vhd'), (f) => editVhdDynamicHeader(f, (h) => h.writeUInt32BE(3 * MiB, 32))),
    code: 'DiskCorrupt',
    message: 'invalid block size',
  });
  hostile({
    name: 'dynamic VHD whose block table is too small',
    file: await derive(p('dynamic.vhd'), p('dyn-small-bat.vhd'), (f) => editVhdDynamicHeader(f, (h) => h.writeUInt32BE(1, 28))),
    code: 'DiskCorrupt',
    message: 'too small for its virtual size',
  });
  hostile({
    name: 'VHDX with both headers damaged',
    file: await derive(p('disk.vhdx'), p('bad-headers.vhdx'), async (f) => {
      await patch(f, 64 * 1024 + 100, Buffer.from('x'));
      await patch(f, 128 * 1024 + 100, Buffer.from('x'));
    }),
    code: 'DiskCorrupt',
    message: 'Neither VHDX header',
  });
  hostile({
    name: 'VHDX without a block table region',
    file: await derive(p('disk.vhdx'), p('no-bat.vhdx'), (f) =>
      editVhdxRegionTables(f, (t) => {
        const n = t.readUInt32LE(8);
        for (let i = 0; i < n; i++) if (t.subarray(16 + i * 32, 32 + i * 32).equals(VHDX_GUIDS.bat)) randomBytes(16).copy(t, 16 + i * 32);
      }),
    ),
    code: 'DiskCorrupt',
    message: 'lacks its block table',
  });
  hostile({
    name: 'VHDX with a damaged metadata table signature',
    file: await derive(p('disk.vhdx'), p('bad-metadata.vhdx'), async (f) => patch(f, await vhdxRegionOffset(f, VHDX_GUIDS.metadata), Buffer.from('METADATA'))),
    code: 'DiskCorrupt',
    message: 'metadata table has no valid signature',
  });
  hostile({
    name: 'VHDX with 3000 metadata entries',
    file: await derive(p('disk.vhdx'), p('many-items.vhdx'), async (f) => {
      const c = Buffer.alloc(2);
      c.writeUInt16LE(3000);
      await patch(f, (await vhdxRegionOffset(f, VHDX_GUIDS.metadata)) + 10, c);
    }),
    code: 'DiskCorrupt',
    message: '3000 entries',
  });
  hostile({
    name: 'VHDX metadata item outside the metadata region',
    file: await derive(p('disk.vhdx'), p('item-outside.vhdx'), async (f) => {
      const metaOff = await vhdxRegionOffset(f, VHDX_GUIDS.metadata);
      const table = await readAt(f, metaOff, 64 * 1024);
      for (let i = 0; i < table.readUInt16LE(10); i++) {
        if (table.subarray(32 + i * 32, 48 + i * 32).equals(VHDX_GUIDS.virtualDiskSize)) await patch(f, metaOff + 32 + i * 32 + 16, le32(0x7ffffff0));
      }
    }),
    code: 'DiskCorrupt',
    message: 'lies outside the metadata region',
  });

  hostile({
    name: 'VHDX without a virtual disk size item',
    file: await derive(p('disk.vhdx'), p('no-size.vhdx'), async (f) => patch(f, (await vhdxItem(f, VHDX_GUIDS.virtualDiskSize)).entryAt + 20, le32(0))),
    code: 'DiskCorrupt',
    message: 'lacks required metadata',
  });
  hostile({
    name: 'VHDX with a 1000-byte logical sector size',
    file: await derive(p('disk.vhdx'), p('sector-size.vhdx'), async (f) => patch(f, (await vhdxItem(f, VHDX_GUIDS.logicalSectorSize)).dataAt, le32(1000))),
    code: 'DiskCorrupt',
    message: 'logical sector size',
  });
  hostile({
    name: 'VHDX whose block table is too small for its size',
    file: await derive(p('disk.vhdx'), p('bat-small.vhdx'), async (f) => patch(f, (await vhdxItem(f, VHDX_GUIDS.virtualDiskSize)).dataAt, le64(1n << 40n))),
    code: 'DiskCorrupt',
    message: 'block table is too small',
  });
  await writeFile(p('descriptor-empty.vmdk'), '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicSparse"\n');
  hostile({ name: 'plain-text VMDK descriptor without extents', file: p('descriptor-empty.vmdk'), code: 'DiskCorrupt', message: 'lists no extents' });
  hostile({
    name: 'VMDK with a 3-sector grain size',
    file: await derive(p('sparse.vmdk'), p('grain.vmdk'), (f) => patch(f, 20, le64(3n))),
    code: 'DiskCorrupt',
    message: 'invalid grain size',
  });

  // --- claims and trivia ---
  hostile({
    name: 'VHDX claimed as VHD',
    file: p('disk.vhdx'),
    claimed: 'vhd',
    code: 'DiskFormatMismatch',
    message: 'declared as VHD but its content is VHDX',
  });
  hostile({ name: 'qcow2 claimed as VMDK', file: p('v3.qcow2'), claimed: 'vmdk', code: 'DiskFormatMismatch', message: 'declared as VMDK' });
  await writeFile(p('empty.raw'), Buffer.alloc(0));
  hostile({ name: 'empty file', file: p('empty.raw'), code: 'DiskTruncated', message: 'empty' });

  // Make sure the helper's own edits did not leave the canary marker in any image.
  for (const c of cases) {
    if (c.file !== canary && (await readFile(c.file)).includes(marker)) throw new Error(`corpus bug: ${c.name} contains the marker`);
  }
  return { dir, canary, marker, base, cases };
}
