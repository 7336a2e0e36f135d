// Running the built `labforge` command in tests: build dist/ when a source
// file is newer than its compiled copy (scripts/test.sh builds first; a bare
// vitest run may not), and the paths the tests need.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'labforge.js');

function distIsStale(): boolean {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  return walk(join(ROOT, 'src')).some((src) => {
    const out = join(ROOT, 'dist', relative(join(ROOT, 'src'), src).replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs;
  });
}

export function ensureBuilt(): void {
  if (!distIsStale()) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error(`the build failed:\n${r.stdout}${r.stderr}`);
}
