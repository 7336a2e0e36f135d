// Follows a growing log file (a VM's serial console) like `tail -f`: the last
// part first, then each new piece as it is written, until told to stop or the
// producer is gone.
import { open } from 'node:fs/promises';

export interface FollowOptions {
  tailBytes: number;
  onData(text: string): void;
  /** Checked every few seconds; when it answers false, the rest is sent and the follow ends. */
  stillWanted(): Promise<boolean>;
  onEnd(): void;
  intervalMs?: number;
}

export function followFile(path: string, o: FollowOptions): () => void {
  let stopped = false;
  let offset = -1;
  let ticks = 0;
  const interval = o.intervalMs ?? 250;
  const readNew = async () => {
    const h = await open(path, 'r').catch(() => undefined);
    if (!h) return;
    try {
      const { size } = await h.stat();
      if (offset < 0) offset = Math.max(0, size - o.tailBytes);
      if (size < offset) offset = 0;
      while (offset < size && !stopped) {
        const buf = Buffer.alloc(Math.min(size - offset, 256 * 1024));
        const { bytesRead } = await h.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        o.onData(buf.subarray(0, bytesRead).toString('utf8'));
      }
    } finally {
      await h.close();
    }
  };
  const loop = async () => {
    while (!stopped) {
      await readNew();
      if (++ticks % Math.max(1, Math.round(2000 / interval)) === 0 && !(await o.stillWanted())) {
        await readNew();
        stopped = true;
        o.onEnd();
        return;
      }
      await new Promise((r) => setTimeout(r, interval));
    }
  };
  void loop().catch(() => o.onEnd());
  return () => {
    stopped = true;
  };
}
