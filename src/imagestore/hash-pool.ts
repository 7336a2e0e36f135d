// SHA-256 on worker threads, so verification and imports hash on every core
// while the main thread keeps reads and writes in flight. Buffers are
// transferred, not copied. For imports a worker can also read the block
// itself (positioned reads on its own thread, so reads never queue behind the
// fsyncs of chunk writes in libuv's small thread pool) and test it for zeros
// before hashing; the buffer comes back with the result, to be reused.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const fds = new Map();
let zero = Buffer.alloc(0);
// All-zero test: a few words first (data blocks almost always fail there), then one compare.
function isZero(b) {
  const n = b.length;
  if (n === 0) return true;
  if (b[0] !== 0 || b[n - 1] !== 0 || b[n >> 1] !== 0 || b[n >> 2] !== 0 || b[(3 * n) >> 2] !== 0) return false;
  if (zero.length < n) zero = Buffer.alloc(n);
  return b.equals(n === zero.length ? zero : zero.subarray(0, n));
}
parentPort.on('message', (m) => {
  try {
    if (m.op === 'hash') {
      parentPort.postMessage({ id: m.id, digest: createHash('sha256').update(new Uint8Array(m.buf)).digest('hex') });
      return;
    }
    if (m.op === 'close') {
      // Closes the files of the given paths (all without paths); a later read opens its file again.
      for (const [path, fd] of fds) {
        if (m.paths && !m.paths.includes(path)) continue;
        closeSync(fd);
        fds.delete(path);
      }
      parentPort.postMessage({ id: m.id });
      return;
    }
    // 'block': optionally read [offset, offset + length) of a file into buf, then zero-test and hash it; buf goes back.
    const b = Buffer.from(m.buf, 0, m.length);
    let n = m.length;
    if (m.path !== undefined) {
      let fd = fds.get(m.path);
      if (fd === undefined) {
        fd = openSync(m.path, 'r');
        fds.set(m.path, fd);
      }
      n = 0;
      while (n < m.length) {
        const r = readSync(fd, b, n, m.length - n, m.offset + n);
        if (r === 0) break;
        n += r;
      }
    }
    const data = b.subarray(0, n);
    const digest = n === m.length && !isZero(data) ? createHash('sha256').update(data).digest('hex') : null;
    parentPort.postMessage({ id: m.id, digest, bytes: n, buf: m.buf }, [m.buf]);
  } catch (err) {
    const back = m.buf && m.buf.byteLength ? [m.buf] : [];
    parentPort.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err), code: err && err.code, buf: m.buf }, back);
  }
});
`;

export interface BlockResult {
  /** SHA-256 in hex, or null when the block is all zeros or shorter than asked. */
  digest: string | null;
  /** Bytes in the block (fewer than asked when a read hit the end of the file). */
  bytes: number;
  /** The buffer that was passed in, usable again (its memory came back from the worker). */
  buf: Buffer;
}

interface Reply {
  id: number;
  digest?: string | null;
  bytes?: number;
  buf?: ArrayBuffer;
  error?: string;
  code?: string;
}

export class HashPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, (reply: Reply) => void>();
  private readonly dead = new Set<Worker>();
  private nextId = 0;
  private turn = 0;

  private readonly background: boolean;

  constructor(size = availableParallelism(), opts: { background?: boolean } = {}) {
    this.background = opts.background === true;
    for (let i = 0; i < Math.max(1, size); i++) {
      const w = new Worker(WORKER, { eval: true });
      w.on('message', (reply: Reply) => {
        this.pending.get(reply.id)?.(reply);
        this.pending.delete(reply.id);
        this.idle();
      });
      // A worker that dies fails what is waiting (ids are not per worker: fail them all) instead of hanging it.
      const fail = (err: unknown) => {
        this.dead.add(w);
        const error = err instanceof Error ? err.message : 'hash worker exited';
        for (const [id, resolve] of this.pending) resolve({ id, error });
        this.pending.clear();
        this.idle();
      };
      w.on('error', fail);
      w.on('exit', fail);
      // A pool kept for the life of the process must not keep the process alive by itself. After the
      // listeners: adding a 'message' listener to an unref'd worker refs its port again.
      if (opts.background) w.unref();
      this.workers.push(w);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** True once a worker died: the pool cannot be used any more. */
  get broken(): boolean {
    return this.dead.size > 0;
  }

  /** Closes the files the workers opened for block reads of these paths (for a pool that stays). */
  async release(paths: string[]): Promise<void> {
    if (!paths.length || this.broken) return;
    await Promise.all(this.workers.map((w) => this.send(w, { op: 'close', paths }, [])));
  }

  private send(worker: Worker, msg: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<Reply> {
    const id = this.nextId++;
    if (this.dead.has(worker)) return Promise.resolve({ id, error: 'hash worker exited' });
    return new Promise((resolve) => {
      // While anything is asked of a background pool, its threads keep the process alive.
      if (this.background && this.pending.size === 0) for (const w of this.workers) w.ref();
      this.pending.set(id, resolve);
      worker.postMessage({ ...msg, id }, transfer);
    });
  }

  /** A background pool with nothing asked of it no longer keeps the process alive. */
  private idle(): void {
    if (this.background && this.pending.size === 0) for (const w of this.workers) w.unref();
  }

  private pick(lane?: number): Worker {
    return this.workers[(lane ?? this.turn++) % this.workers.length] as Worker;
  }

  /** Hashes the bytes; `data` is unusable afterwards (its memory moves to the worker). */
  async hash(data: Buffer): Promise<string> {
    let owned = data;
    if (data.byteOffset !== 0 || data.buffer.byteLength !== data.length) owned = Buffer.from(data);
    const reply = await this.send(this.pick(), { op: 'hash', buf: owned.buffer }, [owned.buffer as ArrayBuffer]);
    if (reply.error !== undefined) throw new Error(reply.error);
    return reply.digest as string;
  }

  /**
   * Zero-tests and hashes the first `length` bytes of `buf`, after reading
   * them from `path` at `offset` when a path is given. `buf` must own its whole
   * ArrayBuffer (byteOffset 0); it is unusable until the result hands it back.
   * Calls with the same `lane` go to the same thread (consecutive blocks of a
   * file read sequentially on one descriptor, which keeps readahead working).
   */
  async block(buf: Buffer, length: number, from?: { path: string; offset: number }, lane?: number): Promise<BlockResult> {
    if (buf.byteOffset !== 0) throw new Error('HashPool.block needs a buffer that owns its memory');
    const reply = await this.send(this.pick(lane), { op: 'block', buf: buf.buffer, length, path: from?.path, offset: from?.offset ?? 0 }, [
      buf.buffer as ArrayBuffer,
    ]);
    const back = reply.buf ? Buffer.from(reply.buf) : Buffer.alloc(0);
    if (reply.error !== undefined) {
      const err = new Error(reply.error) as NodeJS.ErrnoException;
      if (reply.code) err.code = reply.code;
      throw Object.assign(err, { buf: back });
    }
    return { digest: reply.digest ?? null, bytes: reply.bytes ?? 0, buf: back };
  }

  async close(): Promise<void> {
    // Files the workers opened for block reads are process-wide descriptors: close them before the threads go.
    await Promise.all(this.workers.map((w) => this.send(w, { op: 'close' }, [])));
    for (const w of this.workers) w.removeAllListeners('exit');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

let shared: HashPool | undefined;

/**
 * The process's hashing threads, started on first use and kept: starting threads costs about as much as
 * hashing 64 MiB here, which a small capture or import would otherwise pay each time. At least four even
 * on two cores: each reads then hashes, and a thread waiting on a cold read leaves its core to another.
 * Callers share it (requests are independent); they release the files they read, never close the pool.
 */
export function sharedHashPool(): HashPool {
  if (!shared || shared.broken) shared = new HashPool(Math.max(4, Math.min(8, availableParallelism())), { background: true });
  return shared;
}
