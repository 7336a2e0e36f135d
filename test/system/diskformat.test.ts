// The disk-format inspector and the confined qemu-img wrapper against a corpus
// of valid and hostile images built at test time (test/helpers/hostile-images.ts).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpStatus } from '../../src/api/errors.js';
import {
  convert,
  crossCheckInfo,
  DiskFormatError,
  type InspectedDisk,
  inspect,
  inspectAndCheck,
  QEMU_FORMAT,
  type QemuImgInfo,
} from '../../src/diskformat/index.js';
import { buildCorpus, type Corpus, DATA_SIZE, type HostileCase, qemuImg, type ValidCase } from '../helpers/hostile-images.js';

const run = promisify(execFile);

let corpus: Corpus;
let out: string;
let canaryHash: string;
const corpusReady = buildCorpus();

beforeAll(async () => {
  corpus = await corpusReady;
  out = join(corpus.dir, 'out');
  await mkdir(out);
  canaryHash = createHash('sha256')
    .update(await readFile(corpus.canary))
    .digest('hex');
});
afterAll(async () => {
  if (corpus) await rm(corpus.dir, { recursive: true, force: true });
});

const { cases } = await corpusReady;
const valid = cases.filter((c): c is ValidCase => c.kind === 'valid');
const hostile = cases.filter((c): c is HostileCase => c.kind === 'hostile');

async function refusal(p: Promise<unknown>): Promise<DiskFormatError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DiskFormatError) return e;
    throw e;
  }
  throw new Error('expected a refusal, but the image was accepted');
}

/** Fails if any file under `dir` contains `marker`. */
async function assertNoMarker(dir: string, marker: string): Promise<void> {
  const needle = Buffer.from(marker);
  for (const name of await readdir(dir, { recursive: true })) {
    const file = join(dir, String(name));
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch {
      continue; // a directory
    }
    expect(buf.includes(needle), `${file} contains the canary marker`).toBe(false);
  }
}

describe('disk-format corpus', () => {
  it('has at least 20 hostile cases and every valid format', () => {
    expect(hostile.length).toBeGreaterThanOrEqual(20);
    expect(new Set(valid.map((c) => c.format))).toEqual(new Set(['raw', 'vhd', 'vhdx', 'qcow2', 'vmdk']));
  });
});

describe.each(valid)('accepts $name', (c) => {
  it('inspects, cross-checks with qemu-img info, converts to raw losslessly', async () => {
    const opts = c.claimed ? { claimed: c.claimed } : {};
    const disk = await inspect(c.file, opts);
    expect(disk.format).toBe(c.format);
    expect(disk.virtualSize).toBe(c.virtualSize);
    if (c.details) expect(disk.details).toMatchObject(c.details);

    const checked = await inspectAndCheck(c.file, opts);
    expect(checked.format).toBe(c.format);
    expect(checked.virtualSize).toBe(c.virtualSize);

    const target = join(out, `${c.name.replace(/\W+/g, '_')}.raw`);
    const progress: number[] = [];
    const result = await convert(checked, target, 'raw', { onProgress: (p) => progress.push(p) });
    expect(result.format).toBe('raw');
    expect(result.virtualSize).toBe(c.virtualSize);
    await run('qemu-img', ['compare', '-f', QEMU_FORMAT[c.format], '-F', 'raw', c.file, target], { timeout: 20_000 });
    // The guest data survived (the source of every valid image is the same pattern).
    const head = (await readFile(target)).subarray(0, DATA_SIZE);
    expect(head.equals(await readFile(corpus.base))).toBe(true);
    await rm(target);
  });
});

describe.each(hostile)('refuses $name → $code', (c) => {
  const opts = () => ({ ...(c.claimed ? { claimed: c.claimed } : {}), ...(c.maxVirtualSize ? { maxVirtualSize: c.maxVirtualSize } : {}) });

  it('inspect() refuses with the exact code and a helpful message', async () => {
    const e = await refusal(inspect(c.file, opts()));
    expect(e.code).toBe(c.code);
    expect(httpStatus(e)).toBe(400);
    expect(e.message).toContain(c.message);
  });

  it('the inspect → qemu-img info → convert pipeline refuses and never leaks the canary', async () => {
    const dir = join(out, c.name.replace(/\W+/g, '_'));
    await mkdir(dir, { recursive: true });
    const e = await refusal(
      (async () => {
        const disk = await inspectAndCheck(c.file, opts());
        await convert(disk, join(dir, 'converted.raw'), 'raw');
        await convert(disk, join(dir, 'converted.qcow2'), 'qcow2');
      })(),
    );
    expect(e.code).toBe(c.code);
    await assertNoMarker(out, corpus.marker);
    const hash = createHash('sha256')
      .update(await readFile(corpus.canary))
      .digest('hex');
    expect(hash).toBe(canaryHash);
  });
});

describe('inspect() options', () => {
  it('refuses an unknown claimed format', async () => {
    const e = await refusal(inspect(corpus.base, { claimed: 'iso' as never }));
    expect(e.code).toBe('DiskFormatMismatch');
    expect(e.message).toContain('Unknown disk format "iso"');
  });

  it('refuses something that is not a regular file', async () => {
    const e = await refusal(inspect(corpus.dir));
    expect(e.code).toBe('DiskCorrupt');
    expect(e.message).toContain('not a regular file');
  });

  it('stops reading when the metadata read budget is exhausted', async () => {
    const e = await refusal(inspect(join(corpus.dir, 'v3.qcow2'), { readBudget: 4096 }));
    expect(e.code).toBe('DiskUnsupportedFeature');
    expect(e.message).toContain('more than 4096 bytes of metadata');
  });
});

describe('qemu-img wrapper', () => {
  const fakeInspected = (disk: InspectedDisk): InspectedDisk => ({ ...disk });

  it('cross-checks real qemu-img info output: backing file, data file, format and size', async () => {
    const disk = await inspect(join(corpus.dir, 'v3.qcow2'));
    const infoOf = async (name: string, fmt = 'qcow2') =>
      JSON.parse(await qemuImg('info', '-U', '-f', fmt, '--output=json', join(corpus.dir, name))) as QemuImgInfo;
    expect(() => crossCheckInfo(disk, { format: 'qcow2', 'virtual-size': DATA_SIZE })).not.toThrow();

    const backing = await infoOf('qcow2-backing-json.qcow2');
    expect(() => crossCheckInfo(disk, backing)).toThrow(expect.objectContaining({ code: 'DiskHasBackingFile' }));
    const dataFile = await infoOf('qcow2-data-file.qcow2');
    expect(() => crossCheckInfo(disk, dataFile)).toThrow(expect.objectContaining({ code: 'DiskHasExternalDataFile' }));
    const luks = await infoOf('luks.qcow2');
    expect(() => crossCheckInfo(disk, luks)).toThrow(expect.objectContaining({ code: 'DiskEncrypted' }));
    // qemu-img's own probe of a fixed VHD says "raw": a mismatch is refused.
    const probed = JSON.parse(await qemuImg('info', '--output=json', join(corpus.dir, 'fixed.vhd'))) as QemuImgInfo;
    const vhd = await inspect(join(corpus.dir, 'fixed.vhd'));
    expect(probed.format).toBe('raw');
    expect(() => crossCheckInfo(vhd, probed)).toThrow(expect.objectContaining({ code: 'DiskFormatMismatch' }));
    expect(() => crossCheckInfo(vhd, probed)).toThrow('reads this file as "raw"');
    expect(() => crossCheckInfo(disk, { format: 'raw', 'virtual-size': DATA_SIZE })).toThrow('reads this file as "raw"');
    expect(() => crossCheckInfo(disk, { format: 'qcow2', 'virtual-size': DATA_SIZE + 512 })).toThrow(expect.objectContaining({ code: 'DiskFormatMismatch' }));
    expect(() => crossCheckInfo(disk, { format: 'qcow2', 'virtual-size': DATA_SIZE + 512 })).toThrow('virtual size of 4194816');
  });

  it('runs only on objects returned by inspect()', async () => {
    const disk = await inspect(join(corpus.dir, 'v3.qcow2'));
    const e = await refusal(convert(fakeInspected(disk), join(out, 'forged.raw'), 'raw'));
    expect(e.code).toBe('InternalError');
    await expect(readdir(out)).resolves.not.toContain('forged.raw');
  });

  it('refuses a file that changed after inspection', async () => {
    const copy = join(out, 'changing.qcow2');
    await copyFile(join(corpus.dir, 'v3.qcow2'), copy);
    const disk = await inspect(copy);
    await appendFile(copy, Buffer.alloc(512));
    const e = await refusal(inspectAndCheck(copy).then(() => convert(disk, join(out, 'changing.raw'), 'raw')));
    expect(e.code).toBe('DiskFormatMismatch');
    expect(e.message).toContain('changed after it was inspected');
    await rm(copy);
  });

  it('stops qemu-img at the wall-clock timeout', async () => {
    const disk = await inspect(join(corpus.dir, 'v3.qcow2'));
    const e = await refusal(convert(disk, join(out, 'slow.raw'), 'raw', { limits: { convertTimeoutMs: 1 } }));
    expect(e.code).toBe('DiskInspectionFailed');
    expect(e.message).toContain('stopped after 1 ms');
    await rm(join(out, 'slow.raw'), { force: true });
  });

  it('refuses unreadable qemu-img output', async () => {
    const e = await refusal(inspectAndCheck(join(corpus.dir, 'v3.qcow2'), { limits: { qemuImg: 'echo' } }));
    expect(e.code).toBe('DiskInspectionFailed');
    expect(e.message).toContain('unreadable output');
  });

  it('runs qemu-img under prlimit (a tiny address space makes it fail)', async () => {
    const e = await refusal(inspectAndCheck(join(corpus.dir, 'v3.qcow2'), { limits: { infoAddressSpace: 16 * 1024 * 1024 } }));
    expect(e.code).toBe('DiskInspectionFailed');
  });
});
