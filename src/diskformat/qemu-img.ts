// qemu-img, run only on files the inspector accepted, only with an explicit
// "-f <format>", only through execFile (no shell) under prlimit (address space
// and CPU seconds) and a wall-clock timeout. `info` output is checked against
// the inspection; `convert` output is inspected again.
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { DiskFormatError, diskError } from './errors.js';
import { type DiskFormat, type InspectedDisk, type InspectOptions, inspect, wasInspected } from './inspect/index.js';
import { GiB } from './inspect/reader.js';

export const QEMU_FORMAT: Record<DiskFormat, string> = { vhd: 'vpc', vhdx: 'vhdx', qcow2: 'qcow2', vmdk: 'vmdk', raw: 'raw' };

export interface QemuLimits {
  /** Address-space limit in bytes for `info` (default 1 GiB). */
  infoAddressSpace?: number;
  /** CPU seconds for `info` (default 8). */
  infoCpuSeconds?: number;
  /** Wall-clock timeout for `info` in ms (default 30 s). */
  infoTimeoutMs?: number;
  /** Address-space limit in bytes for `convert` (default 4 GiB). */
  convertAddressSpace?: number;
  /** CPU seconds for `convert` (default 3600). */
  convertCpuSeconds?: number;
  /** Wall-clock timeout for `convert` in ms (default 2 h). */
  convertTimeoutMs?: number;
  /** qemu-img binary (default "qemu-img"). */
  qemuImg?: string;
}

export interface QemuImgInfo {
  format: string;
  'virtual-size': number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'format-specific'?: { type?: string; data?: { 'data-file'?: string; encrypt?: unknown; [k: string]: unknown } };
  encrypted?: boolean;
  [k: string]: unknown;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(argv: string[], limits: { as: number; cpu: number; timeoutMs: number }, qemuImg: string, onStdout?: (chunk: string) => void): Promise<RunResult> {
  const args = [`--as=${limits.as}`, `--cpu=${limits.cpu}`, '--', qemuImg, ...argv];
  return new Promise((ok, fail) => {
    const child = execFile(
      'prlimit',
      args,
      { timeout: limits.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } },
      (err, stdout, stderr) => {
        if (err) {
          const why = (err as { killed?: boolean }).killed
            ? `was stopped after ${limits.timeoutMs} ms`
            : `failed (${String(stderr).trim().slice(0, 300) || err.message})`;
          fail(
            diskError(
              'DiskInspectionFailed',
              `qemu-img ${argv[0]} ${why}. The image may be damaged or crafted to exhaust resources; convert it on a trusted machine and upload again.`,
            ),
          );
        } else ok({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (onStdout) child.stdout?.on('data', (c: Buffer | string) => onStdout(String(c)));
  });
}

/** The inspected file's path, once it is checked to be the very file the inspector read (same inode, size, mtime). */
export async function assertUnchanged(disk: InspectedDisk): Promise<string> {
  if (!wasInspected(disk)) {
    throw new DiskFormatError('InternalError', 'qemu-img may only run on a file returned by inspect().');
  }
  const st = await stat(disk.path);
  if (st.ino !== disk.ino || st.size !== disk.fileSize || st.mtimeMs !== disk.mtimeMs) {
    throw diskError('DiskFormatMismatch', 'The image file changed after it was inspected; it is refused. Upload it again.');
  }
  if (!isAbsolute(disk.path)) throw new DiskFormatError('InternalError', 'Inspected path is not absolute.');
  return disk.path;
}

/** Checks qemu-img's view of the file against the inspector's. Throws a refusal on any difference. */
export function crossCheckInfo(disk: InspectedDisk, info: QemuImgInfo): void {
  if (info['backing-filename'] !== undefined || info['full-backing-filename'] !== undefined) {
    throw diskError(
      'DiskHasBackingFile',
      `qemu-img reports a backing file for this ${disk.format} image, which the upload does not include. Convert it to a standalone image on a trusted machine and upload that.`,
    );
  }
  const data = info['format-specific']?.data;
  if (data && data['data-file'] !== undefined) {
    throw diskError(
      'DiskHasExternalDataFile',
      'qemu-img reports an external data file for this image, which the upload does not include. Convert it to a standalone image on a trusted machine and upload that.',
    );
  }
  if (info.encrypted === true || (data && data.encrypt !== undefined)) {
    throw diskError('DiskEncrypted', 'qemu-img reports that this image is encrypted. Decrypt it on a trusted machine and upload the unencrypted result.');
  }
  if (info.format !== QEMU_FORMAT[disk.format]) {
    throw diskError(
      'DiskFormatMismatch',
      `qemu-img reads this file as "${String(info.format)}" but inspection found ${disk.format}. The file is refused; convert it on a trusted machine and upload again.`,
    );
  }
  if (info['virtual-size'] !== disk.virtualSize) {
    throw diskError(
      'DiskFormatMismatch',
      `qemu-img reports a virtual size of ${String(info['virtual-size'])} bytes but inspection found ${disk.virtualSize}. The file is refused; convert it on a trusted machine and upload again.`,
    );
  }
}

/** `qemu-img info -f <fmt> --output=json` on an inspected file, cross-checked. */
export async function info(disk: InspectedDisk, limits: QemuLimits = {}): Promise<QemuImgInfo> {
  const path = await assertUnchanged(disk);
  const { stdout } = await run(
    ['info', '-f', QEMU_FORMAT[disk.format], '--output=json', path],
    { as: limits.infoAddressSpace ?? GiB, cpu: limits.infoCpuSeconds ?? 8, timeoutMs: limits.infoTimeoutMs ?? 30_000 },
    limits.qemuImg ?? 'qemu-img',
  );
  let parsed: QemuImgInfo;
  try {
    parsed = JSON.parse(stdout) as QemuImgInfo;
  } catch {
    throw diskError('DiskInspectionFailed', 'qemu-img info returned unreadable output for this image. Convert it on a trusted machine and upload again.');
  }
  crossCheckInfo(disk, parsed);
  return parsed;
}

export interface InspectAndCheckOptions extends InspectOptions {
  limits?: QemuLimits;
}

/** Inspect in our own code, then cross-check with a confined `qemu-img info`. */
export async function inspectAndCheck(path: string, opts: InspectAndCheckOptions = {}): Promise<InspectedDisk> {
  const disk = await inspect(path, opts);
  await info(disk, opts.limits);
  return disk;
}

export interface ConvertOptions {
  limits?: QemuLimits;
  onProgress?: (percent: number) => void;
  /** Limit applied when re-inspecting the output (default: the inspector's default). */
  maxVirtualSize?: number;
}

/** Converts an inspected image to raw or qcow2 at `outPath`, then inspects the output. */
export async function convert(disk: InspectedDisk, outPath: string, outFormat: 'raw' | 'qcow2', opts: ConvertOptions = {}): Promise<InspectedDisk> {
  const path = await assertUnchanged(disk);
  const out = resolve(outPath);
  const limits = opts.limits ?? {};
  const argv = ['convert', '-f', QEMU_FORMAT[disk.format], '-O', outFormat];
  if (opts.onProgress) argv.push('-p');
  argv.push(path, out);
  const onProgress = opts.onProgress;
  await run(
    argv,
    { as: limits.convertAddressSpace ?? 4 * GiB, cpu: limits.convertCpuSeconds ?? 3600, timeoutMs: limits.convertTimeoutMs ?? 2 * 3600_000 },
    limits.qemuImg ?? 'qemu-img',
    onProgress
      ? (chunk) => {
          for (const m of chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)) onProgress(Number(m[1]));
        }
      : undefined,
  );
  const result = await inspect(out, { claimed: outFormat, ...(opts.maxVirtualSize ? { maxVirtualSize: opts.maxVirtualSize } : {}) });
  if (result.virtualSize < disk.virtualSize) {
    throw diskError('DiskInspectionFailed', `The converted image is smaller (${result.virtualSize} bytes) than the source (${disk.virtualSize} bytes).`);
  }
  return result;
}
