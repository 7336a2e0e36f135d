// SHA-256 on worker threads, so verification hashes on every core while the
// main thread keeps reads in flight. Buffers are transferred, not copied.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, buf }) => {
  parentPort.postMessage({ id, digest: createHash('sha256').update(new Uint8Array(buf)).digest('hex') });
});
`;

export class HashPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, (digest: string) => void>();
  private nextId = 0;
  private turn = 0;

  constructor(size = availableParallelism()) {
    for (let i = 0; i < Math.max(1, size); i++) {
      const w = new Worker(WORKER, { eval: true });
      w.on('message', ({ id, digest }: { id: number; digest: string }) => {
        this.pending.get(id)?.(digest);
        this.pending.delete(id);
      });
      this.workers.push(w);
    }
  }

  /** Hashes the bytes; `data` is unusable afterwards (its memory moves to the worker). */
  hash(data: Buffer): Promise<string> {
    let owned = data;
    if (data.byteOffset !== 0 || data.buffer.byteLength !== data.length) owned = Buffer.from(data);
    const id = this.nextId++;
    const worker = this.workers[this.turn++ % this.workers.length] as Worker;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      worker.postMessage({ id, buf: owned.buffer }, [owned.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
