// Memory of the image store on a large disk: import, replication and export
// of a 50 GiB disk must each stay under 300 MiB of resident memory, whatever
// the disk's size (docs/PERFORMANCE.md, "Memory on a 50 GiB disk").
//
// The disk is a sparse 50 GiB fixed VHD holding 2 GiB of incompressible data
// in 4 MiB runs spread evenly over its whole address space. Each phase runs
// in this process with its peak RSS sampled, beside a baseline tool doing the
// same job on the same file in the same run:
//   1. import: importDisk() into region A    vs qemu-img convert -f vpc -O qcow2
//   2. replication: replicateVersion() A→B   vs cp of the VHD (+ sync)
//   3. export: the fixed-VHD download stream  vs dd of the VHD to /dev/null
//      of all 50 GiB, read to the end
//
// Usage: node bench/memory.mjs [--save] [--size-gib 50] [--data-gib 2]
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { dist, fmt, GiB, log, MiB, now, ROOT, rssSampler, sh, timed, toolVersion } from './lib/common.mjs';

const { values: args } = parseArgs({
  options: {
    save: { type: 'boolean', default: false },
    'size-gib': { type: 'string', default: '50' },
    'data-gib': { type: 'string', default: '2' },
  },
});
const SIZE = Number(args['size-gib']) * GiB;
const DATA = Number(args['data-gib']) * GiB;
const RUN = 4 * MiB;
const TARGET_MIB = 300;
if (!(SIZE >= GiB && DATA >= RUN && DATA <= SIZE / 2 && SIZE % RUN === 0 && DATA % RUN === 0)) {
  throw new Error('--size-gib and --data-gib must give whole GiB, with the data at most half the disk');
}

const { ChunkStore } = await dist('imagestore/chunk-store.js');
const { LocalBlobDriver } = await dist('imagestore/drivers/local.driver.js');
const { importDisk } = await dist('imagestore/import.js');
const { replicateVersion } = await dist('imagestore/replicate.js');
const { exportDisk } = await dist('imagestore/export.js');
const { sharedHashPool } = await dist('imagestore/hash-pool.js');

const mib = (n) => n / MiB;
const work = mkdtempSync(join(tmpdir(), 'labforge-memory-bench-'));
const started = now();
log(
  `labforge memory benchmark: a ${fmt(SIZE / GiB, 0)} GiB fixed VHD with ${fmt(DATA / GiB, 0)} GiB of data; load ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
log(`${toolVersion('qemu-img', ['--version'])}`);

try {
  // ---- the disk ----
  log('setup: sparse raw disk with data runs spread over it, converted to a fixed VHD (sparse)');
  const raw = join(work, 'disk.raw');
  const runs = DATA / RUN;
  const stride = Math.floor(SIZE / RUN / runs);
  const fd = openSync(raw, 'w');
  ftruncateSync(fd, SIZE);
  const zero = Buffer.alloc(RUN);
  for (let i = 0; i < runs; i++) {
    const key = createHash('sha256').update(`labforge-memory:${i}`).digest().subarray(0, 16);
    writeSync(fd, createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(zero), 0, RUN, i * stride * RUN);
  }
  closeSync(fd);
  const vhd = join(work, 'disk.vhd');
  sh('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size=on', raw, vhd]);
  rmSync(raw);
  sh('sync');
  const store = (name) => new ChunkStore(new LocalBlobDriver(join(work, name)), name);
  await sharedHashPool().hash(Buffer.alloc(16));
  const rows = [];
  const measure = async (phase, fn) => {
    const rssBefore = process.memoryUsage.rss();
    const stop = rssSampler();
    const t0 = now();
    const out = await fn();
    return { phase, seconds: now() - t0, rssBefore, peakRss: stop(), out };
  };

  // ---- 1. import ----
  log('1. import: importDisk into region A, then qemu-img convert -f vpc -O qcow2');
  const a = store('region-a');
  const imp = await measure('import', () => importDisk(a, vhd, { name: 'os', maxVirtualSize: SIZE * 2, tmpDir: join(work, 'tmp'), tmpName: 'import' }));
  await a.putManifest('v1', { format: 'labforge-manifest/1', disks: [imp.out.disk] });
  const qimg = timed('qemu-img', ['convert', '-f', 'vpc', '-O', 'qcow2', vhd, join(work, 'out.qcow2')]);
  rmSync(join(work, 'out.qcow2'));
  rows.push({ ...imp, out: undefined, baseline: { name: 'qemu-img convert -f vpc -O qcow2', ...qimg, stdout: undefined } });

  // ---- 2. replication ----
  log('2. replication: replicateVersion A→B, then cp of the VHD (+ sync)');
  const b = store('region-b');
  const rep = await measure('replication', () => replicateVersion(a, b, 'v1'));
  const cp = timed('bash', ['-c', `cp --sparse=always '${vhd}' '${join(work, 'copy.vhd')}' && sync '${join(work, 'copy.vhd')}'`]);
  rmSync(join(work, 'copy.vhd'));
  rows.push({ ...rep, out: undefined, baseline: { name: 'cp --sparse=always + sync', ...cp, stdout: undefined } });

  // ---- 3. export ----
  log('3. export: the fixed-VHD download stream read to the end, then dd of the VHD to /dev/null');
  let bytes = 0;
  const exp = await measure('export (fixed VHD stream)', async () => {
    const e = await exportDisk(b, imp.out.disk, 'vhd', join(work, 'tmp'));
    await pipeline(
      e.stream,
      new Writable({
        write(chunk, _enc, done) {
          bytes += chunk.length;
          done();
        },
      }),
    );
    await e.cleanup();
  });
  if (bytes !== Math.ceil(SIZE / MiB) * MiB + 512) throw new Error(`the export stream gave ${bytes} bytes`);
  const dd = timed('dd', [`if=${vhd}`, 'of=/dev/null', 'bs=1M', 'status=none']);
  rows.push({ ...exp, out: undefined, baseline: { name: 'dd if=disk.vhd of=/dev/null bs=1M', ...dd, stdout: undefined } });

  // ---- report ----
  const header = ['phase', 'labforge s', 'peak RSS MiB', 'baseline', 'baseline s', 'baseline RSS MiB', 'time ratio'];
  const body = rows.map((r) => [
    r.phase,
    fmt(r.seconds),
    fmt(mib(r.peakRss), 0),
    r.baseline.name,
    fmt(r.baseline.seconds),
    r.baseline.peakRss === undefined ? '–' : fmt(mib(r.baseline.peakRss), 0),
    fmt(r.seconds / r.baseline.seconds),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => String(row[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  console.log(`\nMemory on a ${fmt(SIZE / GiB, 0)} GiB disk with ${fmt(DATA / GiB, 0)} GiB of data (${imp.out.stats.chunksCreated} chunks)`);
  console.log([line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n'));
  console.log(
    '   time ratio = labforge / baseline. Peak RSS of this whole process, sampled every 50 ms; before the import it was',
    `${fmt(mib(imp.rssBefore), 0)} MiB.`,
  );
  const worst = Math.max(...rows.map((r) => mib(r.peakRss)));
  console.log(`\nTarget: every phase under ${TARGET_MIB} MiB of resident memory: ${worst < TARGET_MIB ? 'met' : 'NOT met'} (highest ${fmt(worst, 0)} MiB)`);
  console.log(`${fmt(now() - started, 1)} s in total; vhd allocated ${fmt((statSync(vhd).blocks * 512) / GiB, 2)} GiB`);
  if (args.save) {
    const dir = join(ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `memory-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ sizeBytes: SIZE, dataBytes: DATA, targetMiB: TARGET_MIB, rows }, null, 2)}\n`);
    console.log(`results: ${file}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(0);
