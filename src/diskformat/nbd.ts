// Reading the guest's view of an inspected disk image without converting it
// to a temporary file: `qemu-nbd` serves the image read-only (with the format
// the inspector found, never probed, under prlimit) on a private unix socket,
// and a small NBD client here reads guest ranges from it. A compressed qcow2
// of a few hundred KiB that expands to gigabytes therefore needs no temporary
// space at all: its blocks go straight into the chunk store.
//
// The client speaks the fixed-newstyle handshake with NBD_OPT_GO (no
// structured replies), then simple READ requests, several in flight, matched
// by handle (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { diskError } from './errors.js';
import type { InspectedDisk } from './inspect/index.js';
import { GiB } from './inspect/reader.js';
import { assertUnchanged, QEMU_FORMAT } from './qemu-img.js';

const run = promisify(execFile);

const NBDMAGIC = 0x4e42444d41474943n;
const IHAVEOPT = 0x49484156454f5054n;
const REPLY_MAGIC = 0x3e889045565a9n;
const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;
const OPT_GO = 7;
const REP_ACK = 1;
const REP_INFO = 3;
const INFO_EXPORT = 0;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const CMD_READ = 0;
const CMD_DISC = 2;

export interface GuestReader {
  /** The guest's size in bytes (checked against the inspection). */
  readonly size: number;
  /** Guest byte ranges that hold data, sorted and disjoint; the rest reads as zeros. */
  extents(): Promise<Array<[number, number]>>;
  /** Reads `length` guest bytes at `offset` into `buf` (and returns the filled part of it). */
  read(offset: number, length: number, buf: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

export interface GuestReaderLimits {
  /** Address-space limit of qemu-nbd and qemu-img map (default 4 GiB). */
  addressSpace?: number;
  /** CPU seconds of qemu-nbd (default 3600). */
  cpuSeconds?: number;
}

const failed = (what: string) =>
  diskError(
    'DiskInspectionFailed',
    `Reading the image through qemu-nbd failed (${what}). The image may be damaged or crafted to exhaust resources; convert it on a trusted machine and upload again.`,
  );

/** A byte queue over the socket: the handshake reads fixed-size fields from it. */
class Incoming {
  private chunks: Buffer[] = [];
  private size = 0;
  private wanted: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private error: Error | undefined;

  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    this.serve();
  }

  fail(e: Error): void {
    this.error = e;
    this.wanted?.reject(e);
    this.wanted = undefined;
  }

  take(n: number): Promise<Buffer> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.wanted = { n, resolve, reject };
      this.serve();
    });
  }

  private serve(): void {
    if (!this.wanted || this.size < this.wanted.n) return;
    const all = Buffer.concat(this.chunks);
    const out = all.subarray(0, this.wanted.n);
    const rest = all.subarray(this.wanted.n);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    const w = this.wanted;
    this.wanted = undefined;
    w.resolve(Buffer.from(out));
  }
}

class NbdClient {
  private readonly incoming = new Incoming();
  private readonly pending = new Map<bigint, { length: number; buf: Buffer; resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private nextHandle = 1n;
  private transmitting = false;
  size = 0;

  constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.incoming.push(d));
    const end = (e: Error) => {
      this.incoming.fail(e);
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    socket.on('error', (e) => end(failed(e.message)));
    socket.on('close', () => end(failed('the server closed the connection')));
  }

  async handshake(): Promise<void> {
    const hello = await this.incoming.take(18);
    if (hello.readBigUInt64BE(0) !== NBDMAGIC || hello.readBigUInt64BE(8) !== IHAVEOPT) throw failed('not an NBD server');
    if ((hello.readUInt16BE(16) & FLAG_FIXED_NEWSTYLE) === 0) throw failed('the server does not speak fixed newstyle');
    const clientFlags = Buffer.alloc(4);
    clientFlags.writeUInt32BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    // NBD_OPT_GO for the default export (empty name), asking for no extra information.
    const opt = Buffer.alloc(16 + 4 + 2);
    opt.writeBigUInt64BE(IHAVEOPT, 0);
    opt.writeUInt32BE(OPT_GO, 8);
    opt.writeUInt32BE(6, 12);
    opt.writeUInt32BE(0, 16);
    opt.writeUInt16BE(0, 20);
    this.socket.write(Buffer.concat([clientFlags, opt]));
    for (let i = 0; i < 64; i++) {
      const h = await this.incoming.take(20);
      if (h.readBigUInt64BE(0) !== REPLY_MAGIC) throw failed('a malformed option reply');
      const type = h.readUInt32BE(12);
      const length = h.readUInt32BE(16);
      const data = length ? await this.incoming.take(length) : Buffer.alloc(0);
      if (type === REP_ACK) {
        if (!this.size) throw failed('the server gave no export size');
        this.transmitting = true;
        this.socket.removeAllListeners('data');
        this.socket.on('data', (d: Buffer) => this.onReply(d));
        return;
      }
      if (type === REP_INFO && data.length >= 12 && data.readUInt16BE(0) === INFO_EXPORT) this.size = Number(data.readBigUInt64BE(2));
      else if (type & 0x80000000) throw failed(`the server refused the export (${data.toString('utf8', 4).slice(0, 200) || `error ${type}`})`);
    }
    throw failed('too many option replies');
  }

  // ---- transmission: simple replies, matched by handle ----
  private buffered: Buffer = Buffer.alloc(0);
  private current: { handle: bigint; got: number } | undefined;

  private onReply(d: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, d]) : d;
    for (;;) {
      if (this.current) {
        const p = this.pending.get(this.current.handle);
        if (!p) {
          this.socket.destroy(failed('a reply to an unknown request'));
          return;
        }
        const n = Math.min(p.length - this.current.got, this.buffered.length);
        this.buffered.copy(p.buf, this.current.got, 0, n);
        this.buffered = this.buffered.subarray(n);
        this.current.got += n;
        if (this.current.got < p.length) return;
        this.pending.delete(this.current.handle);
        this.current = undefined;
        p.resolve(p.buf.subarray(0, p.length));
        continue;
      }
      if (this.buffered.length < 16) return;
      if (this.buffered.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) {
        this.socket.destroy(failed('a malformed reply'));
        return;
      }
      const error = this.buffered.readUInt32BE(4);
      const handle = this.buffered.readBigUInt64BE(8);
      this.buffered = this.buffered.subarray(16);
      const p = this.pending.get(handle);
      if (!p) {
        this.socket.destroy(failed('a reply to an unknown request'));
        return;
      }
      if (error !== 0) {
        this.pending.delete(handle);
        p.reject(failed(`read error ${error}`));
        continue;
      }
      this.current = { handle, got: 0 };
    }
  }

  read(offset: number, length: number, buf: Buffer): Promise<Buffer> {
    if (!this.transmitting) return Promise.reject(failed('no connection'));
    const handle = this.nextHandle++;
    const req = Buffer.alloc(28);
    req.writeUInt32BE(REQUEST_MAGIC, 0);
    req.writeUInt16BE(0, 4);
    req.writeUInt16BE(CMD_READ, 6);
    req.writeBigUInt64BE(handle, 8);
    req.writeBigUInt64BE(BigInt(offset), 16);
    req.writeUInt32BE(length, 24);
    return new Promise((resolve, reject) => {
      this.pending.set(handle, { length, buf, resolve, reject });
      this.socket.write(req);
    });
  }

  disconnect(): void {
    if (this.transmitting) {
      const req = Buffer.alloc(28);
      req.writeUInt32BE(REQUEST_MAGIC, 0);
      req.writeUInt16BE(CMD_DISC, 6);
      this.socket.write(req);
    }
    this.socket.end();
  }
}

/** The data ranges of the guest, from `qemu-img map` with the inspected format (confined like every qemu-img call). */
async function guestExtents(disk: InspectedDisk, path: string, limits: GuestReaderLimits): Promise<Array<[number, number]>> {
  const { stdout } = await run(
    'prlimit',
    [`--as=${limits.addressSpace ?? 4 * GiB}`, '--cpu=600', '--', 'qemu-img', 'map', '-f', QEMU_FORMAT[disk.format], '--output=json', path],
    { timeout: 600_000, killSignal: 'SIGKILL', maxBuffer: 512 << 20, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } },
  ).catch((err: Error & { stderr?: string }) => {
    throw failed(
      `qemu-img map: ${String(err.stderr ?? err.message)
        .trim()
        .slice(0, 200)}`,
    );
  });
  const map = JSON.parse(stdout) as Array<{ start: number; length: number; data: boolean; zero: boolean }>;
  const out: Array<[number, number]> = [];
  for (const e of map) {
    if (!e.data || e.zero || e.start >= disk.virtualSize) continue;
    const end = Math.min(e.start + e.length, disk.virtualSize);
    const last = out[out.length - 1];
    if (last && last[1] === e.start) last[1] = end;
    else out.push([e.start, end]);
  }
  return out;
}

/** Serves an inspected image read-only through a confined qemu-nbd and returns a reader of its guest bytes. */
export async function openGuestReader(disk: InspectedDisk, limits: GuestReaderLimits = {}): Promise<GuestReader> {
  const path = await assertUnchanged(disk);
  const dir = await mkdtemp(join(tmpdir(), 'labforge-nbd-'));
  const socketPath = join(dir, `${randomBytes(6).toString('hex')}.sock`);
  const server = spawn(
    'prlimit',
    [
      `--as=${limits.addressSpace ?? 4 * GiB}`,
      `--cpu=${limits.cpuSeconds ?? 3600}`,
      '--',
      'qemu-nbd',
      '--read-only',
      `--format=${QEMU_FORMAT[disk.format]}`,
      `--socket=${socketPath}`,
      '--shared=1',
      path,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } },
  );
  let stderr = '';
  server.stderr?.on('data', (c: Buffer) => {
    stderr += String(c);
  });
  let exited = false;
  server.once('exit', () => {
    exited = true;
  });
  const stop = async () => {
    if (!exited) server.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 200 && !existsSync(socketPath); i++) {
      if (exited) throw failed(`qemu-nbd ended: ${stderr.trim().slice(0, 200)}`);
      await sleep(25);
    }
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(socketPath);
      s.once('connect', () => resolve(s));
      s.once('error', (e) => reject(failed(`cannot connect to qemu-nbd: ${e.message}`)));
    });
    const client = new NbdClient(socket);
    await client.handshake();
    if (client.size !== disk.virtualSize) {
      client.disconnect();
      throw diskError(
        'DiskFormatMismatch',
        `qemu-nbd serves ${client.size} bytes of this ${disk.format} image but inspection found ${disk.virtualSize}. The file is refused; convert it on a trusted machine and upload again.`,
      );
    }
    return {
      size: client.size,
      extents: () => guestExtents(disk, path, limits),
      read: (offset, length, buf) => client.read(offset, length, buf),
      close: async () => {
        client.disconnect();
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
