// Image store benchmark: the content-addressed chunk store (src/imagestore/)
// against the tools an operator would otherwise use, on the same bytes, in one
// run. Every figure is printed as a ratio against its baseline:
//   1. import: importDisk() of a fixed VHD (cold and warm page cache) against
//      `qemu-img convert -f vpc -O qcow2` of the same file, with the peak RSS
//      of this process during the import; and a qcow2 input (read block by
//      block through a read-only qemu-nbd, no temporary copy);
//   2. replication of a version that differs from the previous one by
//      D = 25 block-aligned 4 MiB runs (100 MiB): replicateVersion() A→B after
//      v1 is already in B, against a full copy of the image (cp
//      --sparse=never + fsync) and rsync's delta transfer onto the old image;
//   3. verify: verifyRegion() throughput on cached chunks against sha256sum
//      of the same files (the packs the chunks are in).
// The synthetic disk (default 4 GiB) holds ≈1/4 of its size in 4 MiB runs of
// AES-CTR keystream (seeded, so every run sees the same bytes) at 4 MiB-aligned
// random offsets, zeros elsewhere; the raw file is sparse. Cold runs drop the
// page cache (`sync; echo 3 > /proc/sys/vm/drop_caches`, needs root; skipped
// otherwise). Everything is local: no network. Temp files go under
// os.tmpdir() and are removed at the end. Needs qemu-img, rsync, sha256sum.
// dist/ is rebuilt first when it is missing or older than src/ (as bench/run.sh).
// Usage: node bench/imagestore.mjs [--save] [--size-gib N] [--seed N]
// (--save writes bench/results/imagestore-<ISO date>.json)
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { availableParallelism, cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { rssSampler, timed } from './lib/common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const RUN = 4 * MiB; // data runs and changed runs
const DATA_FRACTION = 0.25; // 1 GiB of a 4 GiB disk
const CHANGED_RUNS = 25; // D = 100 MiB
const VERIFY_ROUNDS = 3;
const RSYNC_TIMEOUT_S = 240;
const TARGETS = { importRatio: 1.2, peakRssMiB: 300, bytesPerD: 1.1, rsyncSpeedup: 10, verifyGBps: 1 };

const { values: args } = parseArgs({
  options: {
    save: { type: 'boolean', default: false },
    'size-gib': { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
  },
});
const SIZE = Math.round(Number(args['size-gib']) * GiB);
const seed = Number(args.seed);
if (!(SIZE >= 256 * MiB) || SIZE % RUN !== 0 || !Number.isInteger(seed)) {
  throw new Error('--size-gib must give at least 256 MiB and a multiple of 4 MiB; --seed must be an integer');
}

const log = (msg) => process.stderr.write(`${msg}\n`);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmtSize = (n) => (n >= GiB ? `${+(n / GiB).toFixed(2)} GiB` : n >= MiB ? `${+(n / MiB).toFixed(1)} MiB` : `${+(n / KiB).toFixed(1)} KiB`);
const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const mib = (n) => n / MiB;
const sh = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
const version = (cmd, argv) => {
  try {
    return sh(cmd, argv).split('\n')[0].trim();
  } catch {
    return null;
  }
};

// ---- dist/ (same staleness check as bench/run.sh) ----

if (!existsSync(join(ROOT, 'dist/server.js')) || sh('find', ['src', '-newer', 'dist/server.js', '-print', '-quit'], { cwd: ROOT }).trim() !== '') {
  log('Building dist/ (npx tsc -p tsconfig.json)');
  execFileSync('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
}
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const { ChunkStore, MANIFEST_FORMAT } = await dist('imagestore/chunk-store.js');
const { LocalBlobDriver } = await dist('imagestore/drivers/local.driver.js');
const { importDisk } = await dist('imagestore/import.js');
const { replicateVersion } = await dist('imagestore/replicate.js');
const { verifyRegion } = await dist('imagestore/maintenance.js');

// ---- deterministic data ----

// mulberry32: small seeded PRNG for the layout.
function prng(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function shuffled(rand, xs) {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
const ZEROS = Buffer.alloc(RUN);
/** RUN bytes of AES-128-CTR keystream for `label`, positioned at the absolute disk offset. */
function keystream(label, offset) {
  const key = createHash('sha256').update(`labforge-imagestore:${seed}:${label}`).digest().subarray(0, 16);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(offset / 16), 8);
  return createCipheriv('aes-128-ctr', key, iv).update(ZEROS);
}

/** v1: data in ≈DATA_FRACTION of the 4 MiB slots; v2: CHANGED_RUNS slots rewritten, half of them in data, half in empty space. */
function makeLayout() {
  const rand = prng(seed * 7919 + 1);
  const slots = SIZE / RUN;
  const order = shuffled(
    rand,
    Array.from({ length: slots }, (_, i) => i),
  );
  const data = order.slice(0, Math.max(CHANGED_RUNS, Math.round(slots * DATA_FRACTION))).sort((a, b) => a - b);
  const empty = order.slice(data.length);
  const fromData = Math.ceil(CHANGED_RUNS / 2);
  const changed = [...shuffled(rand, data).slice(0, fromData), ...empty.slice(0, CHANGED_RUNS - fromData)].sort((a, b) => a - b);
  return { data, changed, dataBytes: data.length * RUN, changedBytes: changed.length * RUN };
}

function writeRuns(file, slots, label, { create }) {
  const fd = openSync(file, create ? 'w' : 'r+');
  try {
    if (create) ftruncateSync(fd, SIZE); // sparse: only the runs get blocks
    for (const s of slots) writeSync(fd, keystream(label, s * RUN), 0, RUN, s * RUN);
  } finally {
    closeSync(fd);
  }
}

const allocated = (file) => statSync(file).blocks * 512;

// ---- measurement helpers ----

let canDropCaches = false;
function dropCaches() {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}
/** Cold: flush and drop the page cache; warm: only flush dirty pages, so earlier writeback does not land in the measurement. */
function prepare(cold) {
  if (cold) dropCaches();
  else execFileSync('sync');
}

/** fsync of one file (coreutils `sync FILE`). */
function fsyncFile(file) {
  const t0 = now();
  execFileSync('sync', [file]);
  return now() - t0;
}

const newStore = (dir, region) => {
  rmSync(dir, { recursive: true, force: true });
  return new ChunkStore(new LocalBlobDriver(dir), region);
};

async function labforgeImport(work, file, storeDir, tag) {
  const store = newStore(storeDir, 'region-a');
  const stop = rssSampler();
  const rssBefore = process.memoryUsage.rss();
  const t0 = now();
  const r = await importDisk(store, file, { name: 'os', maxVirtualSize: 2 * SIZE, tmpDir: join(work, 'tmp'), tmpName: tag });
  const seconds = now() - t0;
  const peakRss = stop();
  return { store, disk: r.disk, format: r.format, stats: r.stats, seconds, rssBefore, peakRss };
}

function qemuConvert(inFormat, file, outFormat, out) {
  rmSync(out, { force: true });
  const r = timed('qemu-img', ['convert', '-f', inFormat, '-O', outFormat, file, out]);
  const fsyncSeconds = fsyncFile(out);
  rmSync(out, { force: true });
  return { seconds: r.seconds, fsyncSeconds, peakRss: r.peakRss };
}

// ---- 1. import ----

async function benchImport(work, files) {
  const rows = [];
  const storeDir = join(work, 'import-store');
  const out = join(work, 'baseline-out.qcow2');
  for (const cold of canDropCaches ? [true, false] : [false, false]) {
    const label = cold ? 'cold' : 'warm';
    log(`  fixed VHD, ${label}: labforge importDisk`);
    prepare(cold);
    const lf = await labforgeImport(work, files.vhd, storeDir, `vhd-${label}`);
    log(`  fixed VHD, ${label}: qemu-img convert -f vpc -O qcow2`);
    prepare(cold);
    const bl = qemuConvert('vpc', files.vhd, 'qcow2', out);
    rows.push({ input: 'fixed VHD', cache: label, labforge: { ...lf, store: undefined, disk: undefined }, baseline: bl });
    if (!cold) files.regionA = lf; // the warm import's store becomes region A
  }
  // An uploaded VHD lands fully allocated (the upload writes its zeros), so qemu-img cannot skip holes with SEEK_DATA.
  log('  fixed VHD copied with cp --sparse=never (as an upload lands), warm: labforge importDisk, then qemu-img');
  const allocatedVhd = join(work, 'v1-allocated.vhd');
  execFileSync('cp', ['--sparse=never', files.vhd, allocatedVhd]);
  prepare(false);
  const lfAlloc = await labforgeImport(work, allocatedVhd, join(work, 'import-store-alloc'), 'vhd-allocated');
  rmSync(join(work, 'import-store-alloc'), { recursive: true, force: true });
  prepare(false);
  const blAlloc = qemuConvert('vpc', allocatedVhd, 'qcow2', out);
  rows.push({ input: 'fixed VHD, allocated', cache: 'warm', labforge: { ...lfAlloc, store: undefined, disk: undefined }, baseline: blAlloc });
  rmSync(allocatedVhd, { force: true });
  log('  qcow2 (through qemu-nbd), warm: labforge importDisk');
  prepare(false);
  const lf = await labforgeImport(work, files.qcow2, join(work, 'import-store-qcow2'), 'qcow2');
  rmSync(join(work, 'import-store-qcow2'), { recursive: true, force: true });
  log('  qcow2, warm: qemu-img convert -f qcow2 -O qcow2, and -O raw (the conversion step alone)');
  prepare(false);
  const bl = qemuConvert('qcow2', files.qcow2, 'qcow2', out);
  prepare(false);
  const toRaw = qemuConvert('qcow2', files.qcow2, 'raw', join(work, 'baseline-out.raw'));
  rows.push({ input: 'qcow2', cache: 'warm', labforge: { ...lf, store: undefined, disk: undefined }, baseline: bl, conversionStepOnly: toRaw });
  return rows;
}

// ---- 2. replication ----

async function benchReplication(work, files, layout) {
  const a = files.regionA.store;
  await a.putManifest('v1', { format: MANIFEST_FORMAT, disks: [files.regionA.disk] });
  const bDir = join(work, 'region-b');
  const b = newStore(bDir, 'region-b');
  log('  replicating v1 A→B (setup; full copy of its chunks)');
  prepare(false);
  let t0 = now();
  const v1 = await replicateVersion(a, b, 'v1');
  const v1Seconds = now() - t0;

  log(`  v2 = v1 with ${layout.changed.length} × 4 MiB runs rewritten; importing v2 into A`);
  execFileSync('cp', ['--sparse=always', files.raw, files.rawV2]);
  writeRuns(files.rawV2, layout.changed, 'v2', { create: false });
  prepare(false);
  t0 = now();
  const v2Import = await importDisk(a, files.rawV2, { name: 'os', maxVirtualSize: 2 * SIZE, tmpDir: join(work, 'tmp'), tmpName: 'v2' });
  const v2ImportSeconds = now() - t0;
  await a.putManifest('v2', { format: MANIFEST_FORMAT, disks: [v2Import.disk] });

  log('  replicating v2 A→B (measured)');
  prepare(false);
  t0 = now();
  const v2 = await replicateVersion(a, b, 'v2');
  const lfSeconds = now() - t0;

  log('  full copy: cp --sparse=never v2.raw → B, then fsync');
  const copyTarget = join(bDir, 'full-copy.raw');
  prepare(false);
  const cp = timed('cp', ['--sparse=never', files.rawV2, copyTarget]);
  const cpFsync = fsyncFile(copyTarget);
  rmSync(copyTarget, { force: true });

  log('  rsync --inplace --no-whole-file v2.raw onto a copy of v1.raw, then fsync');
  const rsyncDir = join(work, 'rsync-dest');
  mkdirSync(rsyncDir, { recursive: true });
  const rsyncTarget = join(rsyncDir, 'disk.raw');
  execFileSync('cp', ['--sparse=always', files.raw, rsyncTarget]);
  prepare(false);
  // --ignore-times: never skip on size+mtime, so rsync reads and checksums both files.
  const rs = timed('rsync', ['--inplace', '--no-whole-file', '--ignore-times', '--stats', files.rawV2, rsyncTarget], {
    timeout: RSYNC_TIMEOUT_S * 1000,
    killSignal: 'SIGKILL',
  });
  const rsFsync = rs.timedOut ? 0 : fsyncFile(rsyncTarget);
  const stat = (name) => {
    const m = new RegExp(`^${name}: ([\\d,]+)`, 'm').exec(rs.stdout);
    return m ? Number(m[1].replaceAll(',', '')) : undefined;
  };
  let rsyncIdentical;
  if (!rs.timedOut) {
    // Same content as v2 (cheap check: the rewritten runs and the first data run).
    const fd = openSync(rsyncTarget, 'r');
    const buf = Buffer.alloc(RUN);
    rsyncIdentical = [...layout.changed, layout.data[0]].every((s) => {
      readAt(fd, buf, s * RUN);
      return buf.equals(layout.changed.includes(s) ? keystream('v2', s * RUN) : keystream('v1', s * RUN));
    });
    closeSync(fd);
  }
  rmSync(rsyncDir, { recursive: true, force: true });

  return {
    D: layout.changedBytes,
    v1Replication: { seconds: v1Seconds, bytesSent: v1.bytesSent, chunksTotal: v1.chunksTotal },
    v2Import: { seconds: v2ImportSeconds, stats: v2Import.stats },
    labforge: { seconds: lfSeconds, bytesSent: v2.bytesSent, chunksTotal: v2.chunksTotal, chunksSkipped: v2.chunksSkipped },
    fullCopy: { seconds: cp.seconds + cpFsync, copySeconds: cp.seconds, fsyncSeconds: cpFsync, bytesSent: statSync(files.rawV2).size },
    rsync: {
      seconds: rs.seconds + rsFsync,
      rsyncSeconds: rs.seconds,
      fsyncSeconds: rsFsync,
      timedOut: rs.timedOut,
      timeoutSeconds: RSYNC_TIMEOUT_S,
      literalBytes: stat('Literal data'),
      matchedBytes: stat('Matched data'),
      totalBytesSent: stat('Total bytes sent'),
      peakRss: rs.peakRss,
      identical: rsyncIdentical,
    },
  };
}
function readAt(fd, buf, position) {
  for (let done = 0; done < buf.length; ) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
}

// ---- 3. verify ----

async function benchVerify(files) {
  const a = files.regionA.store;
  // The chunks' files: packs (and chunk files, in a store written before packs).
  const chunkDirs = ['packs', 'chunks'].map((d) => join(a.driver.root, d)).filter((d) => existsSync(d));
  const findChunks = chunkDirs.map((d) => `'${d}'`).join(' ');
  prepare(false);
  log('  verifyRegion(A) warm-up');
  const warm = await verifyRegion(a, []);
  if (warm.corrupt.length || warm.missing.length) throw new Error(`verifyRegion found problems in a fresh store: ${JSON.stringify(warm).slice(0, 300)}`);
  const lf = [];
  for (let i = 0; i < VERIFY_ROUNDS; i++) {
    const t0 = now();
    await verifyRegion(a, []);
    lf.push(now() - t0);
  }
  log('  sha256sum over the same files (warm-up, then measured)');
  const script = `set -o pipefail; find ${findChunks} -type f -print0 | xargs -0 sha256sum | wc -l`;
  const files256 = Number(sh('bash', ['-c', script]).trim());
  const bl = [];
  for (let i = 0; i < VERIFY_ROUNDS; i++) bl.push(timed('bash', ['-c', script]).seconds);
  // coreutils sha256sum may be built without SHA-NI; openssl dgst uses the same OpenSSL code as Node.
  const opensslScript = `set -o pipefail; find ${findChunks} -type f -print0 | xargs -0 openssl dgst -sha256 | wc -l`;
  const haveOpenssl = version('openssl', ['version']) !== null;
  const ssl = [];
  if (haveOpenssl) {
    sh('bash', ['-c', opensslScript]);
    for (let i = 0; i < VERIFY_ROUNDS; i++) ssl.push(timed('bash', ['-c', opensslScript]).seconds);
  }
  // Reference: the same files read and hashed one after another in this process (no listing, no stat).
  const paths = chunkDirs.flatMap((d) =>
    readdirSync(d, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name)),
  );
  const ref = [];
  for (let i = 0; i < VERIFY_ROUNDS; i++) {
    const t0 = now();
    for (const p of paths) createHash('sha256').update(readFileSync(p)).digest('hex');
    ref.push(now() - t0);
  }
  const bytes = warm.bytesChecked;
  const gbps = (s) => bytes / s / 1e9;
  return {
    chunks: warm.chunksChecked,
    bytes,
    sha256sumFiles: files256,
    labforge: { seconds: median(lf), runs: lf, gbps: gbps(median(lf)) },
    sha256sum: { seconds: median(bl), runs: bl, gbps: gbps(median(bl)) },
    opensslDgst: haveOpenssl ? { seconds: median(ssl), runs: ssl, gbps: gbps(median(ssl)) } : null,
    nodeReadHash: { seconds: median(ref), runs: ref, gbps: gbps(median(ref)) },
  };
}

// ---- report ----

function table(head, rows, left = 1) {
  const lines = [head, ...rows].map((l) => l.map(String));
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const row = (l) => `| ${l.map((v, i) => (i < left ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join(' | ')} |`;
  return [row(lines[0]), `|${widths.map((w, i) => (i < left ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...lines.slice(1).map(row)].join(
    '\n',
  );
}
const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? 'met' : 'NOT met');

function report(r) {
  const out = [];
  const imp = r.import;
  out.push(
    `\n1. Import of a ${fmtSize(SIZE)} disk with ${fmtSize(r.layout.dataBytes)} of data (labforge importDisk vs qemu-img convert -O qcow2 of the same file)`,
  );
  out.push(
    table(
      ['input', 'cache', 'labforge s', 'GB/s (virtual)', 'qemu-img s', 'ratio', 'qemu-img + fsync s', 'ratio', 'peak RSS MiB', 'qemu-img RSS MiB'],
      imp.map((x) => [
        x.input,
        x.cache,
        fmt(x.labforge.seconds),
        fmt(SIZE / x.labforge.seconds / 1e9),
        fmt(x.baseline.seconds),
        fmt(x.labforge.seconds / x.baseline.seconds),
        fmt(x.baseline.seconds + x.baseline.fsyncSeconds),
        fmt(x.labforge.seconds / (x.baseline.seconds + x.baseline.fsyncSeconds)),
        fmt(mib(x.labforge.peakRss), 0),
        x.baseline.peakRss ? fmt(mib(x.baseline.peakRss), 0) : '–',
      ]),
      2,
    ),
  );
  const q = imp.find((x) => x.input === 'qcow2');
  out.push(
    `   ratio = labforge / qemu-img (lower is better). labforge's time includes fsync of every chunk and its directory; qemu-img's output is not fsynced unless the "+ fsync" column says so.` +
      `\n   qcow2 row: importDisk reads the guest through qemu-nbd (no temporary copy); for comparison, qemu-img convert -f qcow2 -O raw alone takes ${fmt(q.conversionStepOnly.seconds)} s (+ ${fmt(q.conversionStepOnly.fsyncSeconds)} s fsync).` +
      `\n   chunks created per import: ${imp[0].labforge.stats.chunksCreated} (${fmtSize(imp[0].labforge.stats.bytesCreated)}); RSS before import ${fmt(mib(imp[0].labforge.rssBefore), 0)} MiB.`,
  );

  const rep = r.replication;
  const lfs = rep.labforge.seconds;
  out.push(`\n2. Replication of v2 = v1 + ${fmtSize(rep.D)} changed (D; ${CHANGED_RUNS} block-aligned 4 MiB runs), v1 already in region B`);
  out.push(
    table(
      ['method', 'seconds', 'bytes sent', 'bytes / D', 'time / labforge'],
      [
        ['labforge replicateVersion A→B', fmt(lfs), fmtSize(rep.labforge.bytesSent), fmt(rep.labforge.bytesSent / rep.D), '1.00'],
        [
          'full copy (cp --sparse=never + fsync)',
          fmt(rep.fullCopy.seconds),
          fmtSize(rep.fullCopy.bytesSent),
          fmt(rep.fullCopy.bytesSent / rep.D),
          fmt(rep.fullCopy.seconds / lfs),
        ],
        [
          `rsync --inplace --no-whole-file (+ fsync)${rep.rsync.timedOut ? ' TIMED OUT' : ''}`,
          `${rep.rsync.timedOut ? '≥' : ''}${fmt(rep.rsync.seconds)}`,
          rep.rsync.literalBytes === undefined ? '–' : `${fmtSize(rep.rsync.literalBytes)} literal`,
          rep.rsync.literalBytes === undefined ? '–' : fmt(rep.rsync.literalBytes / rep.D),
          `${rep.rsync.timedOut ? '≥' : ''}${fmt(rep.rsync.seconds / lfs, 1)}`,
        ],
      ],
    ),
  );
  out.push(
    `   labforge: ${rep.labforge.chunksTotal} chunks in the manifest, ${rep.labforge.chunksSkipped} already in B. Not in the measured time: importing v2 into A took ${fmt(rep.v2Import.seconds)} s ` +
      `(hashing the whole disk; import + replicate = ${fmt(rep.v2Import.seconds + lfs)} s, ${fmt(rep.rsync.seconds / (rep.v2Import.seconds + lfs), 1)}× faster than rsync); ` +
      `the first replication of v1 sent ${fmtSize(rep.v1Replication.bytesSent)} in ${fmt(rep.v1Replication.seconds)} s.` +
      `\n   rsync reads and checksums both ${fmtSize(SIZE)} files (local copy, --ignore-times); its content check of the result: ${rep.rsync.identical === undefined ? 'skipped' : rep.rsync.identical ? 'ok' : 'MISMATCH'}.`,
  );

  const v = r.verify;
  out.push(`\n3. Verify of region A (${v.chunks} chunks, ${fmtSize(v.bytes)}; page cache warm; median of ${VERIFY_ROUNDS})`);
  out.push(
    table(
      ['method', 'seconds', 'GB/s', 'ratio'],
      [
        ['labforge verifyRegion(A, [])', fmt(v.labforge.seconds), fmt(v.labforge.gbps), '1.00'],
        ['find | xargs -0 sha256sum (baseline)', fmt(v.sha256sum.seconds), fmt(v.sha256sum.gbps), fmt(v.labforge.gbps / v.sha256sum.gbps)],
        ...(v.opensslDgst
          ? [['find | xargs -0 openssl dgst -sha256 (SHA-NI)', fmt(v.opensslDgst.seconds), fmt(v.opensslDgst.gbps), fmt(v.labforge.gbps / v.opensslDgst.gbps)]]
          : []),
        [
          'node readFileSync + sha256, sequential (reference)',
          fmt(v.nodeReadHash.seconds),
          fmt(v.nodeReadHash.gbps),
          fmt(v.labforge.gbps / v.nodeReadHash.gbps),
        ],
      ],
    ),
  );
  out.push('   ratio = labforge GB/s / method GB/s (higher is better). GB = 10^9 bytes.');

  const t = r.targets;
  out.push('\nTargets');
  out.push(
    table(
      ['target', 'measured', 'verdict'],
      t.map((x) => [x.name, x.measured, verdict(x.ok)]),
    ),
  );
  return out.join('\n');
}

function evaluate(r) {
  const byCache = (c) => r.import.find((x) => x.input === 'fixed VHD' && x.cache === c);
  const ratio = (x) => x && x.labforge.seconds / x.baseline.seconds;
  const cold = byCache('cold');
  const warm = byCache('warm');
  const peak = Math.max(...r.import.map((x) => x.labforge.peakRss));
  const rep = r.replication;
  const speedup = rep.rsync.seconds / rep.labforge.seconds;
  return [
    {
      name: `import VHD cold ≤ ${TARGETS.importRatio}× qemu-img convert`,
      measured: cold ? `${fmt(ratio(cold))}×` : 'not run',
      ok: cold && ratio(cold) <= TARGETS.importRatio,
    },
    { name: `import VHD warm ≤ ${TARGETS.importRatio}× qemu-img convert`, measured: `${fmt(ratio(warm))}×`, ok: ratio(warm) <= TARGETS.importRatio },
    { name: `peak RSS during import < ${TARGETS.peakRssMiB} MiB`, measured: `${fmt(mib(peak), 0)} MiB`, ok: mib(peak) < TARGETS.peakRssMiB },
    {
      name: `replication bytes sent / D ≤ ${TARGETS.bytesPerD}`,
      measured: fmt(rep.labforge.bytesSent / rep.D),
      ok: rep.labforge.bytesSent / rep.D <= TARGETS.bytesPerD,
    },
    {
      name: `replication ≥ ${TARGETS.rsyncSpeedup}× faster than rsync`,
      measured: `${rep.rsync.timedOut ? '≥' : ''}${fmt(speedup, 1)}×`,
      ok: speedup >= TARGETS.rsyncSpeedup,
    },
    { name: `verify ≥ ${TARGETS.verifyGBps} GB/s (warm)`, measured: `${fmt(r.verify.labforge.gbps)} GB/s`, ok: r.verify.labforge.gbps >= TARGETS.verifyGBps },
  ];
}

// ---- main ----

function gitState() {
  const git = (...a) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { commit: git('rev-parse', 'HEAD'), srcDirty: git('status', '--porcelain', '--', 'src') !== '' };
  } catch {
    return { commit: 'unknown', srcDirty: null };
  }
}

const started = new Date();
const t0 = now();
const machine = {
  nproc: availableParallelism(),
  cpu: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  memGiB: Number((totalmem() / GiB).toFixed(1)),
  freeMemGiB: Number((freemem() / GiB).toFixed(1)),
  tmpdir: tmpdir(),
  tmpFilesystem: version('findmnt', ['-n', '-o', 'FSTYPE', '-T', tmpdir()]) ?? version('stat', ['-f', '-c', '%T', tmpdir()]),
  qemuImg: version('qemu-img', ['--version']),
  rsync: version('rsync', ['--version']),
  sha256sum: version('sha256sum', ['--version']),
  loadavgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
};
console.log(
  `labforge image store benchmark — nproc ${machine.nproc} (${machine.cpu}), Node ${machine.node}, ${machine.memGiB} GiB RAM, ` +
    `tmp ${machine.tmpdir} (${machine.tmpFilesystem}), load ${machine.loadavgAtStart.join(' ')}`,
);
console.log(`${machine.qemuImg}; ${machine.rsync}; ${machine.sha256sum}`);
if (machine.loadavgAtStart[0] > machine.nproc / 2)
  console.log(`warning: load average ${machine.loadavgAtStart[0]} on ${machine.nproc} CPUs — figures will be noisy`);
for (const tool of ['qemu-img', 'rsync', 'sha256sum']) if (!machine[tool === 'qemu-img' ? 'qemuImg' : tool]) throw new Error(`${tool} is needed (not found)`);

try {
  dropCaches();
  canDropCaches = true;
} catch (err) {
  console.log(`cannot drop the page cache (${err.code ?? err.message}): cold rows are skipped, both import runs are warm`);
}

const work = mkdtempSync(join(tmpdir(), 'labforge-imagestore-bench-'));
const cleanup = () => rmSync(work, { recursive: true, force: true });
process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});
let result;
try {
  const layout = makeLayout();
  const files = { raw: join(work, 'v1.raw'), rawV2: join(work, 'v2.raw'), vhd: join(work, 'v1.vhd'), qcow2: join(work, 'v1.qcow2') };
  log(`setup: ${fmtSize(SIZE)} sparse raw with ${layout.data.length} × 4 MiB data runs; fixed VHD and qcow2 copies (qemu-img convert)`);
  writeRuns(files.raw, layout.data, 'v1', { create: true });
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size', files.raw, files.vhd]);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', files.raw, files.qcow2]);
  const fileFacts = Object.fromEntries(['raw', 'vhd', 'qcow2'].map((k) => [k, { size: statSync(files[k]).size, allocated: allocated(files[k]) }]));
  log('1. import');
  const imp = await benchImport(work, files);
  log('2. replication');
  const replication = await benchReplication(work, files, layout);
  log('3. verify');
  const verify = await benchVerify(files);
  result = {
    benchmark: 'imagestore',
    startedAt: started.toISOString(),
    elapsedSeconds: 0,
    machine,
    git: gitState(),
    params: { seed, diskBytes: SIZE, dataBytes: layout.dataBytes, runBytes: RUN, changedRuns: layout.changed.length, cacheDropped: canDropCaches },
    files: fileFacts,
    layout: { dataBytes: layout.dataBytes, changedBytes: layout.changedBytes, dataSlots: layout.data.length, changedSlots: layout.changed },
    import: imp,
    replication,
    verify,
  };
  result.targets = evaluate(result);
} finally {
  cleanup();
}

result.elapsedSeconds = Number((now() - t0).toFixed(1));
result.machine.loadavgAtEnd = loadavg().map((x) => Number(x.toFixed(2)));
console.log(
  `input files: raw ${fmtSize(result.files.raw.size)} (${fmtSize(result.files.raw.allocated)} allocated), fixed VHD ${fmtSize(result.files.vhd.size)} (${fmtSize(result.files.vhd.allocated)} allocated), qcow2 ${fmtSize(result.files.qcow2.size)}; page cache ${canDropCaches ? 'dropped for cold rows' : 'NOT dropped'}`,
);
console.log(report(result));
console.log(`\nload average at end: ${result.machine.loadavgAtEnd.join(' ')}`);
if (args.save) {
  const out = join(HERE, 'results', `imagestore-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  const json = JSON.stringify(result, null, 2).replace(/\[\n\s+([^[\]{}]*?)\n\s*\]/g, (_, inner) => `[${inner.split(/,\n\s+/).join(', ')}]`);
  writeFileSync(out, `${json}\n`);
  console.log(`results: ${out} (${result.elapsedSeconds} s in total)`);
} else console.log(`${result.elapsedSeconds} s in total (--save writes the JSON to bench/results/)`);
