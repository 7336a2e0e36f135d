// Runs `labforge serve` as a separate process (for tests that kill it) and
// waits for the line that gives its URL.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'labforge.js');

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

export async function serveProcess(env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, 'serve'], { env: { ...process.env, LABFORGE_BUILTIN_IMAGES: 'off', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = /labforge is running at (\S+)/.exec(out);
    if (m) return { child, url: m[1] as string, output: () => out };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`server did not start:\n${out}`);
    await sleep(50);
  }
}
