// VM runtime benchmark: what labforge does to give a class its VMs, against
// the plain way, side by side in one run. Every figure is a ratio:
//   1. disks: 100 VM disks from one version as copy-on-write overlays
//      (BaseCache.createOverlay) against full copies of the 1 GiB image
//      (cp --sparse=never + sync; a few are timed and scaled to 100), and
//      against one `qemu-img create` per VM;
//   2. capture: captureOverlay() after 64 MiB, 512 MiB and 2 GiB of guest
//      writes on a 4 GiB disk, against reading and hashing the changed bytes
//      once (sha256 of the same data), against that plus writing them once
//      (cp + sync: the least any store pays), and against `qemu-img convert`
//      flattening the whole disk; then 64 MiB of writes on 4, 32 and 256 GiB
//      disks, to show the time does not grow with the disk;
//   3. boot: from "start" to the test guest's marker line through the qemu
//      driver, against plain qemu-system-x86_64 booting the same disk, under
//      software emulation (TCG) and under KVM when it works here;
//   4. accel: the acceleration probe (a kernel booted under KVM to user space)
//      the first time on a host and with its cached verdict, against starting
//      `qemu-system-x86_64 -version` (the least any check that runs QEMU pays).
// Data is AES-CTR keystream (incompressible, no duplicate blocks); files go
// under os.tmpdir() and are removed at the end. Needs qemu-img, qemu-io,
// qemu-system-x86_64 and the test guest (built with scripts/build-test-guest.sh).
// Usage: node bench/vm.mjs [--save] [--only disks|capture|boot|accel]
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { dist, fmt, fmtSize, GiB, log, MiB, median, now, ROOT, sh, toolVersion, writeKeystream } from './lib/common.mjs';

const { values: args } = parseArgs({ options: { save: { type: 'boolean', default: false }, only: { type: 'string' } } });
const want = (part) => !args.only || args.only === part;
const TARGETS = { hundredDisksSeconds: 1.5, captureVsHash: 2 };
const { BaseCache } = await dist('compute/bases.js');
const { captureOverlay } = await dist('compute/capture.js');
const { QemuDriver } = await dist('compute/qemu/qemu.driver.js');
const { ChunkStore } = await dist('imagestore/chunk-store.js');
const { LocalBlobDriver } = await dist('imagestore/drivers/local.driver.js');
const { sharedHashPool } = await dist('imagestore/hash-pool.js');

const work = mkdtempSync(join(tmpdir(), 'labforge-bench-vm-'));
const started = new Date();
const result = {
  benchmark: 'vm',
  startedAt: started.toISOString(),
  machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model, loadavg: loadavg() },
  tools: { qemuImg: toolVersion('qemu-img', ['--version']), qemu: toolVersion('qemu-system-x86_64', ['--version']) },
};

/** Writes `size` bytes of keystream (label-seeded) to `file` and fsyncs it. */
const writeData = (file, size, label) => writeKeystream(file, size, `labforge-bench-vm:${label}`);

async function sha256File(file) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * MiB })) h.update(chunk);
  return h.digest('hex');
}

// ---- 1. disks for a class ----

if (want('disks')) {
  log('disks: 100 VM disks from one 1 GiB image');
  const dir = join(work, 'disks');
  mkdirSync(dir);
  const base = join(dir, 'base.raw');
  writeData(base, GiB, 'base');
  const cache = new BaseCache(dir);
  let t0 = now();
  for (let i = 0; i < 100; i++) await cache.createOverlay(base, join(dir, `vm-${i}.qcow2`));
  const overlays = now() - t0;
  t0 = now();
  for (let i = 0; i < 100; i++) sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, join(dir, `qi-${i}.qcow2`)]);
  const qemuImgCreate = now() - t0;
  const COPIES = 5;
  t0 = now();
  for (let i = 0; i < COPIES; i++) {
    const copy = join(dir, `copy-${i}.raw`);
    sh('cp', ['--sparse=never', base, copy]);
    sh('sync', [copy]);
    rmSync(copy);
  }
  const fullCopies = ((now() - t0) / COPIES) * 100;
  rmSync(dir, { recursive: true, force: true });
  result.disks = { overlaysSeconds: overlays, qemuImgCreateSeconds: qemuImgCreate, fullCopiesSeconds: fullCopies, fullCopiesTimed: COPIES };
  console.log(
    `100 VM disks (overlays):      ${fmt(overlays, 3)} s   target < ${TARGETS.hundredDisksSeconds} s: ${overlays < TARGETS.hundredDisksSeconds ? 'met' : 'NOT met'}`,
  );
  console.log(`  vs 100 full copies of 1 GiB: ${fmt(fullCopies, 1)} s (${COPIES} timed, scaled)   ratio ${fmt(overlays / fullCopies, 4)}`);
  console.log(`  vs 100 × qemu-img create:    ${fmt(qemuImgCreate, 3)} s   ratio ${fmt(overlays / qemuImgCreate, 3)}`);
}

// ---- 2. capture ----

/** A qcow2 overlay on `base` holding `changed` bytes of fresh data written at 1 GiB + 300 KiB (not block-aligned). */
function overlayWithWrites(dir, base, changed, label) {
  const overlay = join(dir, `${label}.qcow2`);
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, overlay]);
  const piece = Math.min(changed, 256 * MiB);
  const files = [];
  const cmds = [];
  for (let off = 0, i = 0; off < changed; off += piece, i++) {
    const f = join(dir, `${label}-${i}.bin`);
    writeData(f, piece, `${label}-${i}`);
    files.push(f);
    cmds.push('-c', `write -s ${f} ${GiB + 300 * 1024 + off} ${piece}`);
  }
  sh('qemu-io', ['-f', 'qcow2', ...cmds, overlay], { maxBuffer: 64 * MiB });
  return { overlay, files };
}

if (want('capture')) {
  const dir = join(work, 'capture');
  mkdirSync(dir);
  const store = new ChunkStore(new LocalBlobDriver(join(dir, 'store')), 'bench');
  const disk = (size) => ({
    name: 'os',
    virtualSize: size,
    blockSize: MiB,
    blocks: Array.from({ length: size / MiB }, (_, i) => createHash('sha256').update(`b${i}`).digest('hex')),
  });
  // A server captures with its hashing threads running and its store's write buffers made: warm both, as
  // the server does at start and its first write, so the figures are the steady state.
  await sharedHashPool().hash(Buffer.alloc(16));
  await Promise.all(Array.from({ length: 8 }, (_, i) => store.putChunk(createHash('sha512').update(`warm${i}`).digest().toString('hex').repeat(8192))));
  await store.flush();
  log('capture: 4 GiB disk full of data');
  const base4 = join(dir, 'base-4g.raw');
  writeData(base4, 4 * GiB, 'base4');
  result.capture = [];
  for (const changed of [64 * MiB, 512 * MiB, 2 * GiB]) {
    log(`capture: ${fmtSize(changed)} of changes`);
    const { overlay, files } = overlayWithWrites(dir, base4, changed, `c${changed}`);
    const manifest = disk(4 * GiB);
    let t0 = now();
    const { stats } = await captureOverlay(store, { disk: manifest, path: base4 }, overlay, { name: 'os' });
    const capture = now() - t0;
    t0 = now();
    for (const f of files) await sha256File(f);
    const hashOnce = now() - t0;
    // What storing the changed bytes costs at least: writing them once, durably.
    t0 = now();
    for (const f of files) {
      sh('cp', ['--sparse=never', f, `${f}.copy`]);
      sh('sync', [`${f}.copy`]);
    }
    const writeOnce = now() - t0;
    for (const f of files) rmSync(`${f}.copy`);
    t0 = now();
    sh('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', overlay, join(dir, 'flat.raw')]);
    const flatten = now() - t0;
    rmSync(join(dir, 'flat.raw'));
    for (const f of [overlay, ...files]) rmSync(f);
    result.capture.push({
      diskBytes: 4 * GiB,
      changedBytes: changed,
      captureSeconds: capture,
      hashOnceSeconds: hashOnce,
      writeOnceSeconds: writeOnce,
      flattenSeconds: flatten,
      stats,
    });
    console.log(
      `capture ${fmtSize(changed).padEnd(8)} of 4 GiB: ${fmt(capture, 2)} s   vs read+hash once ${fmt(hashOnce, 2)} s: ratio ${fmt(capture / hashOnce)} (target ≤ ${TARGETS.captureVsHash})   vs read+hash + write+sync once ${fmt(hashOnce + writeOnce, 2)} s: ratio ${fmt(capture / (hashOnce + writeOnce))}   vs qemu-img convert (flatten) ${fmt(flatten, 2)} s: ratio ${fmt(capture / flatten)}   stored ${fmtSize(stats.bytesCreated)}`,
    );
  }
  rmSync(base4);
  result.captureBySize = [];
  for (const size of [4 * GiB, 32 * GiB, 256 * GiB]) {
    const base = join(dir, `sparse-${size}.raw`);
    sh('truncate', ['-s', String(size), base]);
    const { overlay, files } = overlayWithWrites(dir, base, 64 * MiB, `s${size}`);
    const manifest = disk(size);
    const t0 = now();
    await captureOverlay(store, { disk: manifest, path: base }, overlay, { name: 'os' });
    const capture = now() - t0;
    for (const f of [overlay, base, ...files]) rmSync(f);
    result.captureBySize.push({ diskBytes: size, changedBytes: 64 * MiB, captureSeconds: capture });
  }
  const first = result.captureBySize[0].captureSeconds;
  console.log(
    `capture 64 MiB by disk size: ${result.captureBySize.map((c) => `${fmtSize(c.diskBytes)} ${fmt(c.captureSeconds, 2)} s (×${fmt(c.captureSeconds / first)})`).join(', ')}`,
  );
  rmSync(dir, { recursive: true, force: true });
}

// ---- 3. boot to the marker line ----

const MARKER = /LABFORGE-GUEST hostname=/;
async function waitMarker(file, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (existsSync(file) && MARKER.test(readFileSync(file, 'latin1'))) return true;
    await sleep(50);
  }
  return false;
}

if (want('boot')) {
  const guest = join(ROOT, '.labforge-data', 'test-guest', 'guest.raw');
  if (!existsSync(guest)) sh('bash', [join(ROOT, 'scripts', 'build-test-guest.sh')], { stdio: 'inherit' });
  const dir = join(work, 'boot');
  mkdirSync(dir);
  const probe = new QemuDriver(join(dir, 'probe'));
  const accels = ['tcg', ...((await probe.acceleration()).accelerator === 'kvm' ? ['kvm'] : [])];
  result.boot = {};
  for (const accel of accels) {
    const driver = new QemuDriver(join(dir, `vms-${accel}`), { accel });
    const cache = new BaseCache(join(dir, 'bases'));
    const ours = [];
    const plain = [];
    for (let i = 0; i < 3; i++) {
      const id = `boot-${accel}-${i}`;
      const overlay = join(dir, `${id}.qcow2`);
      await cache.createOverlay(guest, overlay);
      await driver.create({
        id,
        vcpus: 1,
        memoryMiB: 1024,
        hyperVGeneration: 'V1',
        disks: [{ path: overlay, format: 'qcow2' }],
        forward: { guestPort: 22, hostPort: 0 },
      });
      let t0 = now();
      const st = await driver.start(id);
      if (!(await waitMarker(st.serialLog, 180_000))) throw new Error(`no marker from ${id}`);
      ours.push(now() - t0);
      await driver.delete(id);

      const log2 = join(dir, `plain-${accel}-${i}.log`);
      t0 = now();
      const child = spawn(
        'qemu-system-x86_64',
        ['-machine', `q35,accel=${accel}`, '-cpu', accel === 'kvm' ? 'host' : 'max', '-m', '1024', '-smp', '1', '-display', 'none', '-nodefaults']
          .concat(['-serial', `file:${log2}`, '-device', 'virtio-rng-pci', '-nic', 'none'])
          .concat(['-drive', `file=${guest},if=virtio,format=raw,snapshot=on`]),
        { stdio: 'ignore' },
      );
      const ok = await waitMarker(log2, 180_000);
      plain.push(now() - t0);
      child.kill('SIGKILL');
      if (!ok) throw new Error('no marker from plain QEMU');
    }
    result.boot[accel] = { labforgeSeconds: ours, plainQemuSeconds: plain };
    console.log(
      `boot to marker (${accel}): ${fmt(median(ours), 2)} s (median of 3)   vs plain qemu-system-x86_64 ${fmt(median(plain), 2)} s: ratio ${fmt(median(ours) / median(plain))}`,
    );
  }
  if (!accels.includes('kvm')) console.log('boot to marker (kvm): not measured: /dev/kvm is missing or does not run guests here');
  rmSync(dir, { recursive: true, force: true });
}

// ---- 4. the acceleration probe ----

if (want('accel')) {
  const dir = join(work, 'accel');
  mkdirSync(dir);
  const version = [];
  for (let i = 0; i < 5; i++) {
    const t0 = now();
    sh('qemu-system-x86_64', ['-version']);
    version.push(now() - t0);
  }
  const first = [];
  const cached = [];
  let verdict;
  for (let i = 0; i < 3; i++) {
    const cacheFile = join(dir, `acceleration-${i}.json`);
    let t0 = now();
    verdict = await new QemuDriver(join(dir, 'vms'), { probe: { cacheFile } }).acceleration();
    first.push(now() - t0);
    // A new driver, as after a server restart: the verdict comes from the cache.
    t0 = now();
    await new QemuDriver(join(dir, 'vms'), { probe: { cacheFile } }).acceleration();
    cached.push(now() - t0);
  }
  result.accel = { verdict, firstSeconds: first, cachedSeconds: cached, qemuVersionSeconds: version };
  const base = median(version);
  console.log(
    `acceleration probe (KVM ${verdict.kvm}): first check ${fmt(median(first), 2)} s = ${fmt(median(first) / base, 0)}x one \`qemu-system-x86_64 -version\` (${fmt(base * 1000, 0)} ms); cached verdict ${fmt(median(cached) * 1000, 0)} ms = ${fmt(median(cached) / base)}x`,
  );
  console.log(`  verdict: ${verdict.reason}`);
}

rmSync(work, { recursive: true, force: true });
result.elapsedSeconds = Math.round((Date.now() - started.getTime()) / 1000);
if (args.save) {
  const out = join(ROOT, 'bench', 'results', `vm-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`results: ${out}`);
}
