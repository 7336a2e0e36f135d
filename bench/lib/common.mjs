// Helpers shared by the benchmarks: units, timing, formatting, shell calls,
// and loading the compiled code from dist/ (rebuilt when older than src/).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

/** Imports a compiled module from dist/, building dist/ first when it is missing or older than src/. */
export async function dist(path) {
  if (!existsSync(join(ROOT, 'dist/server.js')) || sh('find', ['src', '-newer', 'dist/server.js', '-print', '-quit'], { cwd: ROOT }).trim() !== '') {
    log('Building dist/ (npx tsc -p tsconfig.json)');
    execFileSync('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  }
  return import(pathToFileURL(join(ROOT, 'dist', path)).href);
}
