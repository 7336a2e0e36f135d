// Chunk size and hash benchmark for the image store (content-addressed chunks:
// each non-zero fixed-size block of a disk is stored once per region, named by
// its hash; all-zero blocks are not stored). Measures, in one process:
//   1. hash throughput (Node crypto SHA-256 = baseline, other hashes, SHA-256
//      on 2 worker threads) for 256 KiB, 1 MiB and 4 MiB buffers;
//   2. chunk writing with the full atomic protocol (temp file, fsync, rename,
//      fsync of the directory; 256 subdirectories by first hash byte) against
//      one sequential file with one fsync;
//   3. delta efficiency: bytes of new chunks a changed 2 GiB disk needs;
// then prints a recommendation derived from those numbers.
// Synthetic disks come from a seeded PRNG (layout) and AES-128-CTR keyed by
// the seed (contents), so every run sees the same bytes.
// Candidate hash packages are not dependencies: install them into a scratch
// folder (default /tmp/hashbench, or LABFORGE_HASHBENCH_DIR):
//   npm install --prefix /tmp/hashbench hash-wasm xxhash-wasm @node-rs/xxhash
// Rows for missing packages are skipped. Temp files go under os.tmpdir().
// Usage: node bench/chunking.mjs [--save] [--seed N] [--dir PATH]
// (--save writes bench/results/chunking-<ISO date>.json; nothing is kept otherwise)
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const BLOCK_SIZES = [256 * KiB, 1 * MiB, 4 * MiB];
const HASH_SECONDS = 0.25; // per measurement; 3 interleaved rounds, median
const HASH_POOL = 64 * MiB; // distinct bytes hashed round-robin (not cache-resident)
const WRITE_DISK = 1 * GiB;
const DELTA_DISK = 2 * GiB;
const DATA_FRACTION = 0.6;
const WRITE_CONCURRENCY = 4; // = libuv's default thread pool
const WRITE_ROUNDS = 3;
const MANIFEST_HEADER = 64; // bytes of framing per manifest (assumed)
const DIGEST_BYTES = 32;

const fmtSize = (n) => (n >= GiB ? `${+(n / GiB).toFixed(2)} GiB` : n >= MiB ? `${+(n / MiB).toFixed(2)} MiB` : `${+(n / KiB).toFixed(1)} KiB`);
const gbps = (bytes, seconds) => bytes / seconds / 1e9;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => Number(process.hrtime.bigint()) / 1e9;

// ---- deterministic data ----

// mulberry32: small seeded PRNG for layouts and offsets.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const keyFor = (seed, label) => createHash('sha256').update(`labforge-chunking:${seed}:${label}`).digest().subarray(0, 16);

// AES-128-CTR keystream positioned at an absolute disk offset (multiple of 16),
// so any byte range of a synthetic disk can be regenerated on its own.
function cipherAt(key, offset) {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(offset / 16), 8);
  return createCipheriv('aes-128-ctr', key, iv);
}
const ZEROS = Buffer.alloc(16 * MiB);
function fillKeystream(key, target, targetOffset, diskOffset, length) {
  const c = cipherAt(key, diskOffset);
  for (let done = 0; done < length; ) {
    const n = Math.min(ZEROS.length, length - done);
    c.update(ZEROS.subarray(0, n)).copy(target, targetOffset + done);
    done += n;
  }
}

// Data extents and zero gaps, 4 KiB aligned, lengths log-uniform in
// 64 KiB..32 MiB, exactly DATA_FRACTION of the disk holding data.
function makeLayout(rand, diskSize) {
  const page = 4 * KiB;
  const logUniform = () => Math.exp(Math.log(64 * KiB) + rand() * (Math.log(32 * MiB) - Math.log(64 * KiB)));
  const dataTotal = Math.round((diskSize * DATA_FRACTION) / page) * page;
  const lengths = [];
  for (let sum = 0; sum < dataTotal; ) {
    const len = Math.min(dataTotal - sum, Math.max(page, Math.round(logUniform() / page) * page));
    lengths.push(len);
    sum += len;
  }
  const weights = lengths.map(() => logUniform()).concat(logUniform());
  const wsum = weights.reduce((a, b) => a + b, 0);
  const gapPages = (diskSize - dataTotal) / page;
  const gaps = weights.map((w) => Math.floor((w / wsum) * gapPages) * page);
  gaps[gaps.length - 1] += diskSize - dataTotal - gaps.reduce((a, b) => a + b, 0);
  const extents = [];
  let off = 0;
  for (let i = 0; i < lengths.length; i++) {
    off += gaps[i];
    extents.push({ offset: off, length: lengths[i] });
    off += lengths[i];
  }
  return { extents, dataBytes: dataTotal };
}

function makeDisk(seed, label, diskSize) {
  const layout = makeLayout(prng(seed * 7919 + label.length), diskSize);
  const disk = Buffer.alloc(diskSize);
  const key = keyFor(seed, label);
  for (const e of layout.extents) fillKeystream(key, disk, e.offset, e.offset, e.length);
  return { disk, ...layout };
}

const isZero = (buf) => buf.equals(ZEROS.subarray(0, buf.length));

// ---- 1. hash throughput ----

function loadCandidates(dir) {
  const req = createRequire(join(dir, 'package.json'));
  const version = (name) => {
    try {
      return JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  const tryRequire = (name) => {
    try {
      return req(name);
    } catch {
      return null;
    }
  };
  return { hashWasm: tryRequire('hash-wasm'), xxhashWasm: tryRequire('xxhash-wasm'), nodeRsXxhash: tryRequire('@node-rs/xxhash'), version };
}

async function hashCandidates(dir, skipped) {
  const list = [
    { name: 'SHA-256', source: 'node:crypto', cryptographic: true, fn: (b) => createHash('sha256').update(b).digest() },
    { name: 'SHA-512/256', source: 'node:crypto', cryptographic: true, fn: (b) => createHash('sha512-256').update(b).digest() },
    { name: 'BLAKE2b-512', source: 'node:crypto', cryptographic: true, fn: (b) => createHash('blake2b512').update(b).digest() },
  ];
  const c = loadCandidates(dir);
  if (c.hashWasm) {
    const src = `hash-wasm@${c.version('hash-wasm')}`;
    const b3 = await c.hashWasm.createBLAKE3();
    const x128 = await c.hashWasm.createXXHash128();
    const x3 = await c.hashWasm.createXXHash3();
    const run = (h) => (b) => h.init().update(b).digest('binary');
    list.push({ name: 'BLAKE3', source: src, cryptographic: true, fn: run(b3) });
    list.push({ name: 'XXH3-128', source: src, cryptographic: false, fn: run(x128) });
    list.push({ name: 'XXH3-64', source: src, cryptographic: false, fn: run(x3) });
  } else skipped.push('hash-wasm');
  if (c.xxhashWasm) {
    const api = await (c.xxhashWasm.default ?? c.xxhashWasm)();
    list.push({ name: 'XXH64', source: `xxhash-wasm@${c.version('xxhash-wasm')}`, cryptographic: false, fn: (b) => api.h64Raw(b) });
  } else skipped.push('xxhash-wasm');
  if (c.nodeRsXxhash) {
    const src = `@node-rs/xxhash@${c.version('@node-rs/xxhash')} (native)`;
    list.push({ name: 'XXH3-128', source: src, cryptographic: false, fn: (b) => c.nodeRsXxhash.xxh3.xxh128(b) });
  } else skipped.push('@node-rs/xxhash');
  return list;
}

function hashLoop(fn, bufs, seconds) {
  let bytes = 0;
  let i = 0;
  const t0 = now();
  let t = t0;
  while (t - t0 < seconds) {
    const b = bufs[i++ % bufs.length];
    fn(b);
    bytes += b.length;
    if ((i & 3) === 0) t = now();
  }
  return { bytes, seconds: now() - t0 };
}
const hashRate = (fn, bufs, seconds) => {
  const r = hashLoop(fn, bufs, seconds);
  return gbps(r.bytes, r.seconds);
};

function poolBuffers(pool, size) {
  const bufs = [];
  for (let o = 0; o + size <= pool.length; o += size) bufs.push(pool.subarray(o, o + size));
  return bufs;
}

// Worker thread: SHA-256 over its own pool, each run started by a message.
function hashWorker() {
  const { size, seed } = workerData;
  const pool = Buffer.alloc(HASH_POOL / 2);
  fillKeystream(keyFor(seed, 'worker'), pool, 0, 0, pool.length);
  const bufs = poolBuffers(pool, size);
  parentPort.on('message', (seconds) => {
    parentPort.postMessage(hashLoop((b) => createHash('sha256').update(b).digest(), bufs, seconds));
  });
  parentPort.postMessage('ready');
}

// Aggregate SHA-256 GB/s of n worker threads started together: warm-up, then
// the median of 3 runs (bytes of all threads / wall time of the slowest).
async function sha256Workers(n, size, seed) {
  const workers = [];
  for (let i = 0; i < n; i++) workers.push(new Worker(fileURLToPath(import.meta.url), { workerData: { size, seed: seed + i } }));
  const next = () => Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  await next();
  const run = async (seconds) => {
    const t0 = now();
    const done = next();
    for (const w of workers) w.postMessage(seconds);
    const results = await done;
    return gbps(
      results.reduce((a, r) => a + r.bytes, 0),
      now() - t0,
    );
  };
  await run(0.1);
  const samples = [];
  for (let round = 0; round < 3; round++) samples.push(await run(HASH_SECONDS * 2));
  await Promise.all(workers.map((w) => w.terminate()));
  return median(samples);
}

async function benchHashes(candidates, seed) {
  const pool = Buffer.alloc(HASH_POOL);
  fillKeystream(keyFor(seed, 'hash'), pool, 0, 0, pool.length);
  const rows = candidates.map((c) => ({ name: c.name, source: c.source, cryptographic: c.cryptographic, threads: 1, gbps: {} }));
  const workerRow = { name: 'SHA-256', source: 'node:crypto, 2 worker threads', cryptographic: true, threads: 2, gbps: {} };
  for (const size of BLOCK_SIZES) {
    const bufs = poolBuffers(pool, size);
    for (const c of candidates) hashLoop(c.fn, bufs, 0.05); // warm-up
    const samples = candidates.map(() => []);
    for (let round = 0; round < 3; round++) {
      candidates.forEach((c, i) => {
        samples[i].push(hashRate(c.fn, bufs, HASH_SECONDS));
      });
    }
    candidates.forEach((_, i) => {
      rows[i].gbps[size] = median(samples[i]);
    });
    workerRow.gbps[size] = await sha256Workers(2, size, seed);
  }
  rows.push(workerRow);
  return rows;
}

// ---- 2. chunk writing ----

const chunkPath = (root, digest) => {
  const hex = digest.toString('hex');
  return { dir: join(root, hex.slice(0, 2)), file: join(root, hex.slice(0, 2), hex) };
};

function makeStoreDir(parent, name) {
  const root = join(parent, name);
  mkdirSync(root);
  for (let i = 0; i < 256; i++) mkdirSync(join(root, i.toString(16).padStart(2, '0')));
  return root;
}

function fsyncDirSync(dir) {
  const fd = openSync(dir, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

function writeSequential(disk, parent) {
  const file = join(parent, 'sequential.img');
  const t0 = now();
  const fd = openSync(file, 'w');
  for (let o = 0; o < disk.length; o += 4 * MiB) writeSync(fd, disk, o, Math.min(4 * MiB, disk.length - o));
  fsyncSync(fd);
  closeSync(fd);
  const seconds = now() - t0;
  rmSync(file);
  return seconds;
}

// One chunk at a time, synchronous calls.
function writeChunksSerial(disk, bs, root) {
  let files = 0;
  for (let o = 0; o < disk.length; o += bs) {
    const block = disk.subarray(o, o + bs);
    if (isZero(block)) continue;
    const { dir, file } = chunkPath(root, createHash('sha256').update(block).digest());
    if (existsSync(file)) continue;
    const tmp = `${file}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'wx');
    writeSync(fd, block);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file);
    fsyncDirSync(dir);
    files++;
  }
  return files;
}

// Hash on the main thread, WRITE_CONCURRENCY chunks in flight (fs/promises).
async function writeChunksConcurrent(disk, bs, root) {
  let next = 0;
  let files = 0;
  const writeOne = async (block) => {
    const { dir, file } = chunkPath(root, createHash('sha256').update(block).digest());
    if (existsSync(file)) return;
    const tmp = `${file}.tmp-${process.pid}`;
    const fh = await open(tmp, 'wx');
    try {
      await fh.write(block);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    files++;
  };
  const lane = async () => {
    while (next < disk.length) {
      const o = next;
      next += bs;
      const block = disk.subarray(o, o + bs);
      if (!isZero(block)) await writeOne(block);
    }
  };
  await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, lane));
  return files;
}

// WRITE_ROUNDS rounds; each runs the baseline and every (block size, mode)
// once, in an order rotated per round; medians are reported.
async function benchWrites(seed, parent, log) {
  const { disk, dataBytes } = makeDisk(seed, 'write', WRITE_DISK);
  const configs = [{ blockSize: 0, mode: 'sequential file' }];
  for (const bs of BLOCK_SIZES) for (const mode of ['serial', `${WRITE_CONCURRENCY} in flight`]) configs.push({ blockSize: bs, mode, seconds: [] });
  configs[0].seconds = [];
  let n = 0;
  for (let round = 0; round < WRITE_ROUNDS; round++) {
    for (let k = 0; k < configs.length; k++) {
      const c = configs[(k + round) % configs.length];
      log(`  round ${round + 1}/${WRITE_ROUNDS}: ${c.blockSize ? `${fmtSize(c.blockSize)} chunks, ${c.mode}` : c.mode}`);
      execFileSync('sync'); // start clean: no dirty pages or pending discards from the previous run
      if (!c.blockSize) {
        c.seconds.push(writeSequential(disk, parent));
        continue;
      }
      const root = makeStoreDir(parent, `store-${n++}`);
      const t0 = now();
      c.files = c.mode === 'serial' ? writeChunksSerial(disk, c.blockSize, root) : await writeChunksConcurrent(disk, c.blockSize, root);
      c.seconds.push(now() - t0);
      rmSync(root, { recursive: true, force: true });
    }
  }
  const [base, ...chunked] = configs;
  const baseSeconds = median(base.seconds);
  const rows = chunked.map((c) => {
    const seconds = median(c.seconds);
    return {
      blockSize: c.blockSize,
      mode: c.mode,
      seconds,
      runs: c.seconds,
      files: c.files,
      storedBytes: c.files * c.blockSize,
      filesPerGiB: c.files / (disk.length / GiB),
      diskGBps: gbps(disk.length, seconds),
      storedGBps: gbps(c.files * c.blockSize, seconds),
      ratio: baseSeconds / seconds,
    };
  });
  return { diskBytes: disk.length, dataBytes, baselineSeconds: base.seconds, baselineGBps: gbps(disk.length, baseSeconds), rows };
}

// ---- 3. delta efficiency ----

function unionLength(writes) {
  const s = [...writes].sort((a, b) => a.offset - b.offset);
  let total = 0;
  let end = -1;
  for (const w of s) {
    const e = w.offset + w.length;
    if (w.offset >= end) total += w.length;
    else if (e > end) total += e - end;
    end = Math.max(end, e);
  }
  return total;
}

function makeScenarios(seed, diskSize) {
  const rand = prng(seed * 104729 + 17);
  const pick = (n) => Math.floor(rand() * n);
  // (a) 25 distinct 4 MiB runs at 4 MiB-aligned offsets.
  const slots = new Set();
  while (slots.size < 25) slots.add(pick(diskSize / (4 * MiB)));
  const aligned = [...slots].map((s) => ({ offset: s * 4 * MiB, length: 4 * MiB }));
  // (b) 1,000 writes of 100 KiB at random 512-byte (sector) offsets.
  const scattered = Array.from({ length: 1000 }, () => ({ offset: pick((diskSize - 100 * KiB) / 512) * 512, length: 100 * KiB }));
  // (c) extra: 25 runs of 4 MiB at random 4 KiB (guest page) offsets.
  const pageAligned = Array.from({ length: 25 }, () => ({ offset: pick((diskSize - 4 * MiB) / (4 * KiB)) * 4 * KiB, length: 4 * MiB }));
  return [
    { id: 'aligned', label: '(a) 25 x 4 MiB, 4 MiB-aligned', writes: aligned },
    { id: 'scattered', label: '(b) 1,000 x 100 KiB, 512 B-aligned', writes: scattered },
    { id: 'pageAligned', label: '(c) 25 x 4 MiB, 4 KiB-aligned', writes: pageAligned },
  ].map((s) => ({ ...s, key: keyFor(seed, `v2-${s.id}`), changedBytes: unionLength(s.writes) }));
}

function benchDelta(seed, log) {
  log('  generating the 2 GiB disk');
  const { disk, dataBytes, extents } = makeDisk(seed, 'delta', DELTA_DISK);
  const scenarios = makeScenarios(seed, DELTA_DISK);
  const scratch = Buffer.alloc(Math.max(...BLOCK_SIZES));
  const rows = [];
  for (const bs of BLOCK_SIZES) {
    log(`  ${fmtSize(bs)} blocks`);
    const nBlocks = DELTA_DISK / bs;
    const digests = new Array(nBlocks).fill(null);
    const known = new Set();
    for (let i = 0; i < nBlocks; i++) {
      const block = disk.subarray(i * bs, (i + 1) * bs);
      if (isZero(block)) continue;
      digests[i] = createHash('sha256').update(block).digest('base64');
      known.add(digests[i]);
    }
    const row = {
      blockSize: bs,
      v1Chunks: known.size,
      v1StoredBytes: known.size * bs,
      chunksPerGiB: known.size / (DELTA_DISK / GiB),
      manifestBytesPerGiB: MANIFEST_HEADER + (GiB / bs) * DIGEST_BYTES,
      scenarios: {},
    };
    for (const sc of scenarios) {
      // Blocks a write touches get their v2 bytes rebuilt and hashed; every
      // other block is byte-identical to v1, so its v1 digest stands.
      const touched = new Map();
      for (const w of sc.writes) {
        for (let b = Math.floor(w.offset / bs); b * bs < w.offset + w.length; b++) {
          if (!touched.has(b)) touched.set(b, []);
          touched.get(b).push(w);
        }
      }
      const fresh = new Set();
      let changedBlocks = 0;
      for (const [b, ws] of touched) {
        const block = scratch.subarray(0, bs);
        disk.copy(block, 0, b * bs, (b + 1) * bs);
        for (const w of ws) {
          const from = Math.max(w.offset, b * bs);
          const to = Math.min(w.offset + w.length, (b + 1) * bs);
          fillKeystream(sc.key, block, from - b * bs, from, to - from);
        }
        if (isZero(block)) continue;
        const d = createHash('sha256').update(block).digest('base64');
        if (d !== digests[b]) changedBlocks++;
        if (!known.has(d)) fresh.add(d);
      }
      row.scenarios[sc.id] = { changedBlocks, newChunks: fresh.size, newBytes: fresh.size * bs, ratio: (fresh.size * bs) / sc.changedBytes };
    }
    rows.push(row);
  }
  return {
    diskBytes: DELTA_DISK,
    dataBytes,
    dataExtents: extents.length,
    scenarios: scenarios.map(({ id, label, writes, changedBytes }) => ({ id, label, writes: writes.length, changedBytes })),
    rows,
  };
}

// ---- output ----

function table(head, rows) {
  const all = [head, ...rows].map((r) => r.map(String));
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(all[0]), w.map((n) => '-'.repeat(n)).join('  '), ...all.slice(1).map(line)].join('\n');
}

function recommend(hashRows, writes, delta) {
  const lines = [];
  const bestWrite = (bs) => writes.rows.filter((r) => r.blockSize === bs).reduce((a, r) => (r.diskGBps > a.diskGBps ? r : a));
  const fastestWrite = Math.max(...BLOCK_SIZES.map((bs) => bestWrite(bs).diskGBps));
  const facts = delta.rows.map((r) => {
    const w = bestWrite(r.blockSize);
    return {
      bs: r.blockSize,
      aligned: r.scenarios.aligned.ratio,
      scattered: r.scenarios.scattered.ratio,
      pageAligned: r.scenarios.pageAligned.ratio,
      write: w.diskGBps,
      storedWrite: w.storedGBps,
      writeRel: w.diskGBps / fastestWrite,
      mode: w.mode,
      storeOverhead: r.v1StoredBytes / delta.dataBytes,
      scatteredSeconds: r.scenarios.scattered.newBytes / (w.storedGBps * 1e9),
      filesPerGiB: w.filesPerGiB,
      manifest: r.manifestBytesPerGiB,
    };
  });
  for (const f of facts) {
    lines.push(
      `${fmtSize(f.bs)}: new bytes ${f.aligned.toFixed(2)}xD aligned, ${f.pageAligned.toFixed(2)}xD 4 KiB-aligned, ${f.scattered.toFixed(2)}xD scattered; ` +
        `full-disk chunk writes ${f.write.toFixed(2)} GB/s (${f.mode}; ${f.writeRel.toFixed(2)}x the fastest block size); ` +
        `~${f.scatteredSeconds.toFixed(1)} s to write the scattered delta's chunks; store ${f.storeOverhead.toFixed(2)}x the data bytes; ` +
        `${Math.round(f.filesPerGiB)} files/GiB; manifest ${fmtSize(f.manifest)}/GiB`,
    );
  }
  // Rule: aligned changes must cost <= 1.1 x D; a full-image import must keep
  // >= half the chunk-write speed of the fastest block size; among what is
  // left, the fewest new bytes for unaligned changes (scattered + 4 KiB-aligned).
  const eligible = facts.filter((f) => f.aligned <= 1.1 && f.writeRel >= 0.5);
  const pool = eligible.length ? eligible : facts;
  const chosen = pool.reduce((a, f) => (f.scattered + f.pageAligned < a.scattered + a.pageAligned ? f : a));
  const excluded = facts
    .filter((f) => !eligible.includes(f))
    .map((f) => `${fmtSize(f.bs)} (${f.aligned > 1.1 ? 'aligned > 1.1xD' : 'write speed < 0.5x the fastest'})`);
  lines.push(
    `=> block size ${fmtSize(chosen.bs)}: the fewest new bytes for unaligned changes among sizes with aligned <= 1.1xD and write speed >= 0.5x the fastest` +
      (excluded.length ? `; excluded: ${excluded.join(', ')}` : ''),
  );
  const sha = hashRows.find((r) => r.name === 'SHA-256' && r.threads === 1).gbps[chosen.bs];
  const crypto = hashRows.filter((r) => r.cryptographic && r.threads === 1).sort((a, b) => b.gbps[chosen.bs] - a.gbps[chosen.bs]);
  const fastestAny = hashRows.filter((r) => r.threads === 1).sort((a, b) => b.gbps[chosen.bs] - a.gbps[chosen.bs])[0];
  const best = crypto[0];
  const hash = best.name !== 'SHA-256' && best.gbps[chosen.bs] > 1.1 * sha ? best : crypto.find((r) => r.name === 'SHA-256');
  lines.push(
    `=> hash ${hash.name} (${hash.source}): ${hash.gbps[chosen.bs].toFixed(2)} GB/s at ${fmtSize(chosen.bs)}, the fastest collision-resistant hash measured` +
      (hash === best ? '' : ` within 10% (${best.name} ${best.gbps[chosen.bs].toFixed(2)} GB/s)`) +
      `; hashing takes ~${((chosen.storedWrite / hash.gbps[chosen.bs]) * 100).toFixed(0)}% of the chunk-writing wall time ` +
      `(${chosen.storedWrite.toFixed(2)} GB/s of chunks written / ${hash.gbps[chosen.bs].toFixed(2)} GB/s hashed), the most a faster hash could save. ` +
      `Fastest overall: ${fastestAny.name} (${fastestAny.source}, ${fastestAny.gbps[chosen.bs].toFixed(2)} GB/s), not collision-resistant, so not usable for chunk names.`,
  );
  return { blockSize: chosen.bs, hash: hash.name, hashSource: hash.source, lines, facts };
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      save: { type: 'boolean', default: false },
      seed: { type: 'string', default: '1' },
      dir: { type: 'string', default: process.env.LABFORGE_HASHBENCH_DIR ?? '/tmp/hashbench' },
    },
  });
  const seed = Number(args.seed);
  const log = (msg) => process.stderr.write(`${msg}\n`);
  const started = now();
  const loadBefore = loadavg();
  const skipped = [];
  const parent = mkdtempSync(join(tmpdir(), 'labforge-chunking-'));
  const cleanup = () => rmSync(parent, { recursive: true, force: true });
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  let hashRows;
  let writes;
  let delta;
  try {
    log('1. hash throughput');
    hashRows = await benchHashes(await hashCandidates(args.dir, skipped), seed);
    log('2. chunk writing (1 GiB)');
    writes = await benchWrites(seed, parent, log);
    log('3. delta efficiency (2 GiB)');
    delta = benchDelta(seed, log);
  } finally {
    cleanup();
  }
  const rec = recommend(hashRows, writes, delta);

  const sizes = BLOCK_SIZES.map(fmtSize);
  const base = hashRows[0];
  console.log(
    `\nlabforge chunking benchmark: node ${process.version}, ${availableParallelism()} cpus (${cpus()[0]?.model}), load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
  );
  if (skipped.length) console.log(`skipped (not installed in ${args.dir}): ${skipped.join(', ')}`);
  console.log(
    `\n1. Hash throughput, GB/s (median of 3 x ${HASH_SECONDS} s over a ${fmtSize(HASH_POOL)} pool); ratio = hash / SHA-256 (node:crypto, 1 thread)\n`,
  );
  console.log(
    table(
      ['hash', 'source', 'crypto', ...sizes.flatMap((s) => [s, 'ratio'])],
      hashRows.map((r) => [
        r.name,
        r.source,
        r.cryptographic ? 'yes' : 'no',
        ...BLOCK_SIZES.flatMap((bs) => [r.gbps[bs].toFixed(2), (r.gbps[bs] / base.gbps[bs]).toFixed(2)]),
      ]),
    ),
  );
  console.log(
    `\n2. Chunk writing of a ${fmtSize(writes.diskBytes)} disk (${fmtSize(writes.dataBytes)} non-zero data); SHA-256 + temp file, fsync, rename, fsync dir; ` +
      `GB/s of disk; median of ${WRITE_ROUNDS} rounds; ratio = vs one sequential file + 1 fsync (${writes.baselineGBps.toFixed(2)} GB/s; runs ${writes.baselineSeconds.map((s) => s.toFixed(2)).join(', ')} s)\n`,
  );
  console.log(
    table(
      ['block', 'mode', 'seconds (runs)', 'disk GB/s', 'stored GB/s', 'ratio', 'files', 'files/GiB', 'stored'],
      writes.rows.map((r) => [
        fmtSize(r.blockSize),
        r.mode,
        `${r.seconds.toFixed(2)} (${r.runs.map((x) => x.toFixed(1)).join(' ')})`,
        r.diskGBps.toFixed(2),
        r.storedGBps.toFixed(2),
        r.ratio.toFixed(2),
        r.files,
        Math.round(r.filesPerGiB),
        fmtSize(r.storedBytes),
      ]),
    ),
  );
  console.log(
    `\n3. Delta efficiency on a ${fmtSize(delta.diskBytes)} disk (${fmtSize(delta.dataBytes)} data in ${delta.dataExtents} extents); ratio = bytes of new chunks / D (D = changed bytes)`,
  );
  for (const s of delta.scenarios) console.log(`   ${s.label}: D = ${fmtSize(s.changedBytes)}`);
  console.log('');
  console.log(
    table(
      ['block', 'v1 chunks', 'v1 stored', 'chunks/GiB', 'manifest/GiB', ...delta.scenarios.flatMap((s) => [`${s.id} new`, 'xD'])],
      delta.rows.map((r) => [
        fmtSize(r.blockSize),
        r.v1Chunks,
        fmtSize(r.v1StoredBytes),
        Math.round(r.chunksPerGiB),
        fmtSize(r.manifestBytesPerGiB),
        ...delta.scenarios.flatMap((s) => [fmtSize(r.scenarios[s.id].newBytes), r.scenarios[s.id].ratio.toFixed(2)]),
      ]),
    ),
  );
  console.log(`   manifest = ${MANIFEST_HEADER} B framing + ${DIGEST_BYTES} B per block (zero blocks included)`);
  console.log('\n4. Recommendation');
  for (const l of rec.lines) console.log(`   ${l}`);

  const elapsed = now() - started;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const report = {
    benchmark: 'chunking',
    date: new Date().toISOString(),
    elapsedSeconds: Math.round(elapsed),
    machine: { node: process.version, cpus: availableParallelism(), cpuModel: cpus()[0]?.model, loadBefore, loadAfter: loadavg() },
    params: {
      seed,
      blockSizes: BLOCK_SIZES,
      hashSeconds: HASH_SECONDS,
      hashPool: HASH_POOL,
      writeConcurrency: WRITE_CONCURRENCY,
      writeRounds: WRITE_ROUNDS,
      dataFraction: DATA_FRACTION,
    },
    skipped,
    hashes: hashRows,
    writes,
    delta,
    recommendation: { blockSize: rec.blockSize, hash: rec.hash, hashSource: rec.hashSource, lines: rec.lines },
  };
  if (args.save) {
    const out = join(dirname(fileURLToPath(import.meta.url)), 'results', `chunking-${stamp}.json`);
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nresults: ${out} (${Math.round(elapsed)} s in total)`);
  } else console.log(`\n${Math.round(elapsed)} s in total (--save writes the JSON to bench/results/)`);
}

if (isMainThread) await main();
else hashWorker();
