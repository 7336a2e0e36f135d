// Helpers shared by the benchmarks: units, timing, formatting, shell calls,
// and loading the compiled code from dist/ (rebuilt when older than src/).
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export const log = (msg) => process.stderr.write(`${msg}\n`);
export const now = () => Number(process.hrtime.bigint()) / 1e9;
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
export const fmtSize = (n) => (n >= GiB ? `${+(n / GiB).toFixed(2)} GiB` : n >= MiB ? `${+(n / MiB).toFixed(1)} MiB` : `${+(n / KiB).toFixed(1)} KiB`);
export const sh = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });

/** The first line a tool prints for its version, or null when it is missing. */
export function toolVersion(cmd, argv) {
  try {
    return sh(cmd, argv).split('\n')[0].trim();
  } catch {
    return null;
  }
}

/** Peak RSS of this process, sampled every 50 ms until the returned function is called. */
export function rssSampler() {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 50);
  return () => {
    clearInterval(timer);
    return Math.max(peak, process.memoryUsage.rss());
  };
}

const HAVE_TIME = existsSync('/usr/bin/time');
/** Runs a command, returns its wall time (and its peak RSS when /usr/bin/time is there). */
export function timed(cmd, argv, opts = {}) {
  const full = HAVE_TIME ? ['/usr/bin/time', ['-f', 'LFBENCH_MAXRSS_KB=%M', cmd, ...argv]] : [cmd, argv];
  const t0 = now();
  const r = spawnSync(full[0], full[1], { encoding: 'utf8', maxBuffer: 64 * MiB, ...opts });
  const seconds = now() - t0;
  if (r.error?.code === 'ETIMEDOUT') return { seconds, timedOut: true, stdout: r.stdout ?? '' };
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  const m = /LFBENCH_MAXRSS_KB=(\d+)/.exec(r.stderr ?? '');
  return { seconds, timedOut: false, stdout: r.stdout, peakRss: m ? Number(m[1]) * KiB : undefined };
}

/** Seconds to make each of `copies` full, durable copies of `file` in `dir` (cp --sparse=never + sync): the baseline a copy-per-use system pays. */
export function fullCopySeconds(file, copies, dir) {
  const each = [];
  for (let i = 0; i < copies; i++) {
    const copy = join(dir, `copy-${i}.raw`);
    const t0 = now();
    sh('cp', ['--sparse=never', file, copy]);
    sh('sync', [copy]);
    each.push(now() - t0);
    rmSync(copy);
  }
  return each;
}

/** Imports a compiled module from dist/, building dist/ first when it is missing or older than src/. */
export async function dist(path) {
  if (!existsSync(join(ROOT, 'dist/server.js')) || sh('find', ['src', '-newer', 'dist/server.js', '-print', '-quit'], { cwd: ROOT }).trim() !== '') {
    log('Building dist/ (npx tsc -p tsconfig.json)');
    execFileSync('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  }
  return import(pathToFileURL(join(ROOT, 'dist', path)).href);
}

/** Writes `size` bytes of AES-CTR keystream seeded by `seed` (incompressible, no repeated blocks) to `file` and fsyncs it. */
export function writeKeystream(file, size, seed) {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zero = Buffer.alloc(16 * MiB);
  const fd = openSync(file, 'w');
  for (let done = 0; done < size; done += zero.length) writeSync(fd, cipher.update(zero.subarray(0, Math.min(zero.length, size - done))));
  fsyncSync(fd);
  closeSync(fd);
}

/** Calls to a running server with a token: `api` (status, headers, parsed body), `ok` (throws unless 2xx), `waitOp` (an operation URL until it Succeeded). */
export function httpApi(baseUrl, token, waitMs) {
  /** One API call: status, headers and parsed JSON (or text). `path` is a path or an absolute URL. */
  async function api(method, path, body) {
    const res = await fetch(path.startsWith('http') ? path : `${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }
  async function ok(method, path, body) {
    const r = await api(method, path, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 800)}`);
    return r;
  }
  /** Polls an operation URL until it leaves InProgress (at most `ms`); throws unless it Succeeded. */
  async function waitOp(url, ms = waitMs, every = 20) {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await api('GET', url);
      if (r.body?.status !== undefined && r.body.status !== 'InProgress') {
        if (r.body.status !== 'Succeeded') throw new Error(`operation ${url} ended ${r.body.status}: ${JSON.stringify(r.body)}`);
        return r.body;
      }
      if (r.status !== 200) throw new Error(`GET ${url}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      if (Date.now() > deadline) throw new Error(`operation still InProgress after ${ms} ms: ${JSON.stringify(r.body)}`);
      await sleep(every);
    }
  }
  return { api, ok, waitOp };
}
