// Writes that bypass the page cache (O_DIRECT). On a virtual machine's disk,
// writing through the page cache costs several times the write itself (about
// 2.7 s of kernel time per GiB here before any fsync, against 0.94 s for the
// whole durable write with O_DIRECT; docs/PERFORMANCE.md), and what the image
// store writes (chunks, materialised bases) is not read back soon.
//
// Direct I/O needs the memory address, the file position and the length to be
// multiples of the device's block size. Positions here are multiples of 4 KiB
// and lengths are padded to 4 KiB (the caller truncates the file afterwards).
// JavaScript can neither ask for aligned memory nor read an address, so a
// buffer is allocated slightly larger and offsets into it are tried with a
// one-block direct write to a scratch file: the device refuses a misaligned
// address with EINVAL. Buffers are kept and reused.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export const DIRECT_ALIGN = 4096;

/** Whether direct I/O is turned off for this process (LABFORGE_DIRECT_IO=0 in the configuration, for comparisons). */
let disabledByConfig = false;
const disabled = () => disabledByConfig;

/** Turns direct I/O on or off for this process (the server does, from its configuration, when it starts). */
export function setDirectIo(enabled: boolean): void {
  disabledByConfig = !enabled;
}

async function probeAligned(dir: string, size: number): Promise<Buffer | undefined> {
  const scratch = join(dir, `.tmp-probe-${randomBytes(6).toString('hex')}`);
  const h = await fs.open(scratch, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600);
  try {
    const raw = new ArrayBuffer(size + DIRECT_ALIGN);
    for (let offset = 0; offset < DIRECT_ALIGN; offset += 16) {
      const view = Buffer.from(raw, offset, size);
      try {
        await h.write(view, 0, DIRECT_ALIGN, 0);
        return view;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      }
    }
    return undefined;
  } finally {
    await h.close();
    await fs.rm(scratch, { force: true });
  }
}

/** Direct writes into files of one filesystem, through a few kept aligned buffers (at most `slots` writes at once). */
export class DirectWrites {
  /** Whether the filesystem takes direct I/O: unknown until the first open. */
  private supported: boolean | undefined;
  private readonly free: Buffer[] = [];
  private busy = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly slots = 8,
    private readonly bufferSize = 1 << 20,
  ) {}

  /**
   * Creates `path` (it must not exist) for direct writes; undefined, having created nothing, where the
   * filesystem refuses direct I/O (tmpfs) or no aligned buffer can be made: the caller writes the ordinary way.
   */
  async create(path: string, dir: string): Promise<FileHandle | undefined> {
    if (this.supported === false || disabled()) return undefined;
    let h: FileHandle;
    try {
      h = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      this.supported = false;
      return undefined;
    }
    if (this.supported === undefined) {
      // The first time: make sure a buffer can be had before promising direct writes.
      const buf = await probeAligned(dir, this.bufferSize).catch(() => undefined);
      if (!buf) {
        this.supported = false;
        await h.close();
        await fs.rm(path, { force: true });
        return undefined;
      }
      this.free.push(buf);
      this.supported = true;
    }
    return h;
  }

  /** Writes `data` at `position` (a multiple of 4 KiB), padded with zeros to whole 4 KiB blocks. */
  async write(h: FileHandle, data: Uint8Array, position: number, dir: string): Promise<void> {
    const padded = Math.ceil(data.length / DIRECT_ALIGN) * DIRECT_ALIGN;
    while (this.busy >= this.slots) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.busy++;
    let buf: Buffer | undefined;
    try {
      buf = this.free.find((b) => b.length >= padded);
      if (buf) this.free.splice(this.free.indexOf(buf), 1);
      else buf = await probeAligned(dir, Math.max(padded, this.bufferSize));
      if (!buf) throw new Error(`no memory address is aligned for direct writes in ${dir}`);
      buf.set(data);
      buf.fill(0, data.length, padded);
      const { bytesWritten } = await h.write(buf, 0, padded, position);
      if (bytesWritten !== padded) throw new Error(`short direct write: ${bytesWritten} of ${padded} bytes`);
    } finally {
      if (buf && buf.length <= 4 * this.bufferSize && this.free.length < this.slots) this.free.push(buf);
      this.busy--;
      this.waiters.shift()?.();
    }
  }
}
