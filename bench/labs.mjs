// Lab Services benchmark: what labforge does to give a class its VMs through
// the Lab Services API, against the plain way, side by side in one run. Every
// figure is a ratio:
//   1. publish: a real server in this process, a Specialized image of 1 GiB
//      of data in a gallery, a lab plan that offers it, and labs of 10, 50 and
//      100 seats (createOption Image: no template VM). "Publish N seats" is
//      POST .../labs/<lab>/publish until its operation has Succeeded: the
//      student disks (qcow2 overlays on the materialised base) and VM records,
//      nothing boots. Against N full copies of the 1 GiB image (cp
//      --sparse=never + sync; a few are timed and scaled to N). A 1-seat lab
//      is published first: it materialises the base from the version's chunks
//      once per host, reported on its own against one full copy, so the 10/50/
//      100 figures are the steady state;
//   2. boot: a lab of 10 seats from the test guest (Specialized), published,
//      then all 10 started through the API at once, until every serial log
//      shows the guest's marker line; against 10 plain qemu-system-x86_64
//      processes booting the same disk at once. Software emulation (TCG).
//      Then a lab with a template VM: the create operation, and the time to
//      the template's marker, against one plain QEMU boot alone (the lab's
//      overhead over the boot).
// Data is AES-CTR keystream (incompressible, no duplicate blocks); files go
// under os.tmpdir() and are removed at the end, and so are the labs and the
// QEMU processes. Needs qemu-img, qemu-system-x86_64 and the test guest
// (built with scripts/build-test-guest.sh when missing).
// Usage: node bench/labs.mjs [--save] [--only publish|boot]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { dist, fmt, fullCopySeconds, GiB, httpApi, log, median, now, ROOT, sh, toolVersion, writeKeystream } from './lib/common.mjs';

const { values: args } = parseArgs({ options: { save: { type: 'boolean', default: false }, only: { type: 'string' } } });
if (args.only && !['publish', 'boot'].includes(args.only)) {
  log(`--only must be publish or boot, not '${args.only}'`);
  process.exit(2);
}
const want = (part) => !args.only || args.only === part;
const TARGETS = { hundredSeatsSeconds: 3 };
const SEATS = [10, 50, 100];
const BOOT_SEATS = 10;
const COPIES = 3;
const WAIT_MS = 10 * 60_000;
const RG_API = 'api-version=2021-04-01';
const COMPUTE = 'api-version=2025-03-03';
const LS = 'api-version=2022-08-01';
const CORE = 'api-version=2026-11-01';
const MARKER = /LABFORGE-GUEST hostname=/;

const { loadConfig } = await dist('config/config.js');
const { startServer } = await dist('server.js');
const { SYSTEM } = await dist('services/common.js');

const work = mkdtempSync(join(tmpdir(), 'labforge-bench-labs-'));
const dataDir = join(work, 'data');
mkdirSync(dataDir);
const started = new Date();
const result = {
  benchmark: 'labs',
  startedAt: started.toISOString(),
  machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model, loadavg: loadavg() },
  tools: { qemuImg: toolVersion('qemu-img', ['--version']), qemu: toolVersion('qemu-system-x86_64', ['--version']) },
};

/** Writes `size` bytes of keystream (label-seeded) to `file` and fsyncs it. */
const writeData = (file, size, label) => writeKeystream(file, size, `labforge-bench-labs:${label}`);

// ---- the server and its API ----

const env = { LABFORGE_DATA_DIR: dataDir, LABFORGE_LISTEN: '127.0.0.1:0', LABFORGE_TLS: '0', LABFORGE_BUILTIN_IMAGES: 'off', LABFORGE_ACCEL: 'tcg' };
const config = loadConfig({ env });
config.operations.pollMilliseconds = 50;
const server = await startServer(config);
const token = server.firstAdminToken;
const sub = (await server.services.groups.listSubscriptions())[0].id;
const rg = `/subscriptions/${sub}/resourceGroups/bench`;
const gallery = `${rg}/providers/Microsoft.Compute/galleries/g`;
const planId = `${rg}/providers/Microsoft.LabServices/labPlans/p`;
const labPath = (lab, rest = '') => `${rg}/providers/Microsoft.LabServices/labs/${lab}${rest}?${LS}`;

const { api, ok, waitOp } = httpApi(server.url, token, WAIT_MS);

/** Sends a long-running call and waits for its operation. */
async function lro(method, path, body, ms) {
  const r = await ok(method, path, body);
  const url = r.headers.get('azure-asyncoperation');
  if (!url) throw new Error(`${method} ${path}: no Azure-AsyncOperation header (HTTP ${r.status} ${JSON.stringify(r.body)})`);
  return waitOp(url, ms);
}

/** Seconds the server's operation ran, from its own start and end times. */
const opSeconds = (op) => (Date.parse(op.endTime) - Date.parse(op.startTime)) / 1000;

/** An image definition whose version 1.0.0 is imported from a raw file on this host. */
async function imageFromFile(name, file) {
  await ok('PUT', `${gallery}/images/${name}?${COMPUTE}`, {
    location: 'site-a',
    properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'b', offer: 'b', sku: name } },
  });
  const t0 = now();
  const { operation } = await server.services.versions.createOrUpdate(
    SYSTEM,
    sub,
    'bench',
    'g',
    name,
    '1.0.0',
    { publishingProfile: { targetRegions: [{ name: 'site-a' }] } },
    'put',
    undefined,
    { osDisk: { sizeGB: 0, hostCaching: 'ReadWrite', source: { kind: 'file', path: file } }, dataDisks: [] },
  );
  await waitOp(`/subscriptions/${sub}/providers/Labforge.Core/operations/${operation.id}?${CORE}`, WAIT_MS, 100);
  await ok('PATCH', `${planId}/images/${name}?${LS}`, { properties: { enabledState: 'Enabled' } });
  return now() - t0;
}

const labs = [];
/** Creates a lab of `seats` seats from the plan's image `image` (createOption Image: no template VM) and waits for it. */
async function createLab(name, image, seats) {
  labs.push(name);
  await lro('PUT', labPath(name), {
    location: 'site-a',
    properties: {
      labPlanId: planId,
      title: 'bench',
      virtualMachineProfile: {
        createOption: 'Image',
        imageReference: { id: `${planId}/images/${image}` },
        sku: { name: 'Standard_B1s', capacity: seats },
        usageQuota: 'PT10H',
      },
    },
  });
}

/** Publishes a lab and checks it has `seats` stopped VMs; returns the seconds seen by the client and by the server. */
async function publish(name, seats) {
  const t0 = now();
  const op = await lro('POST', labPath(name, '/publish'));
  const seconds = now() - t0;
  const vms = (await ok('GET', labPath(name, '/virtualMachines'))).body.value;
  const stopped = vms.filter((v) => v.properties.state === 'Stopped').length;
  if (vms.length !== seats || stopped !== seats) {
    throw new Error(`lab ${name}: expected ${seats} Stopped VMs, got ${vms.length} (${stopped} Stopped): ${vms.map((v) => v.properties.state).join(',')}`);
  }
  return { seconds, serverSeconds: opSeconds(op) };
}

/** Waits until every file shows the marker; returns the seconds from t0 at which each did (null: never, within ms). */
async function waitMarkers(files, t0, ms) {
  const seen = files.map(() => null);
  const deadline = Date.now() + ms;
  while (seen.includes(null) && Date.now() < deadline) {
    for (const [i, f] of files.entries()) if (seen[i] === null && existsSync(f) && MARKER.test(readFileSync(f, 'latin1'))) seen[i] = now() - t0;
    await sleep(100);
  }
  return seen;
}

const plain = [];
let bootKeys = [];
try {
  await ok('PUT', `${rg}?${RG_API}`, { location: 'site-a' });
  await ok('PUT', `${gallery}?${COMPUTE}`, { location: 'site-a' });
  await ok('PUT', `${planId}?${LS}`, { location: 'site-a', properties: { sharedGalleryId: gallery } });

  // ---- 1. publish ----

  if (want('publish')) {
    log('publish: 1 GiB image, imported into the gallery');
    const raw = join(work, 'course.raw');
    writeData(raw, GiB, 'course');
    const importSeconds = await imageFromFile('course', raw);
    log(`publish: imported in ${fmt(importSeconds, 1)} s; warming up with a 1-seat lab`);
    await createLab('warm-1', 'course', 1);
    const warm = await publish('warm-1', 1);
    const seats = [];
    for (const n of SEATS) {
      log(`publish: ${n} seats`);
      await createLab(`lab-${n}`, 'course', n);
      seats.push({ seats: n, ...(await publish(`lab-${n}`, n)) });
    }
    log(`publish: baseline, ${COPIES} full copies of 1 GiB`);
    const copies = fullCopySeconds(raw, COPIES, work);
    const perCopy = copies.reduce((a, b) => a + b, 0) / copies.length;
    rmSync(raw);
    for (const s of seats) s.fullCopiesSeconds = perCopy * s.seats;
    result.publish = {
      imageBytes: GiB,
      importSeconds,
      firstPublish: { seats: 1, ...warm, fullCopySeconds: perCopy, note: 'materialises the base from the chunks once per host; the labs below reuse it' },
      seats,
      fullCopyEachSeconds: copies,
      fullCopiesTimed: COPIES,
    };
    console.log(
      `first publish (1 seat, builds the 1 GiB base from chunks once per host): ${fmt(warm.seconds, 2)} s   vs 1 full copy of 1 GiB ${fmt(perCopy, 2)} s   ratio ${fmt(warm.seconds / perCopy)}`,
    );
    for (const s of seats) {
      const target = s.seats === 100 ? `   target < ${TARGETS.hundredSeatsSeconds} s: ${s.seconds < TARGETS.hundredSeatsSeconds ? 'met' : 'NOT met'}` : '';
      console.log(
        `publish ${String(s.seats).padStart(3)} seats: ${fmt(s.seconds, 2)} s (server ${fmt(s.serverSeconds, 2)} s)   vs ${s.seats} full copies of 1 GiB (${COPIES} timed, scaled): ${fmt(s.fullCopiesSeconds, 1)} s   ratio ${fmt(s.seconds / s.fullCopiesSeconds, 4)}${target}`,
      );
    }
  }

  // ---- 2. boot of 10 ----

  if (want('boot')) {
    const guest = join(ROOT, '.labforge-data', 'test-guest', 'guest.raw');
    if (!existsSync(guest)) sh('bash', [join(ROOT, 'scripts', 'build-test-guest.sh')], { stdio: 'inherit' });
    log('boot: test guest imported into the gallery');
    await imageFromFile('guest', guest);
    const lab = `boot-${BOOT_SEATS}`;
    await createLab(lab, 'guest', BOOT_SEATS);
    const pub = await publish(lab, BOOT_SEATS);
    const rows = await server.services.store.db.selectFrom('virtual_machines').select(['id', 'name']).where('name', 'like', `labs/${lab}/%`).execute();
    bootKeys = rows.map((r) => r.id);
    const logs = rows.map((r) => join(dataDir, 'compute', 'vms', r.id, 'serial.log'));
    log(`boot: starting ${BOOT_SEATS} lab VMs at once`);
    const t0 = now();
    const starts = await Promise.all(Array.from({ length: BOOT_SEATS }, (_, i) => ok('POST', labPath(lab, `/virtualMachines/${i}/start`))));
    const ours = await waitMarkers(logs, t0, WAIT_MS);
    const oursAll = now() - t0;
    if (ours.includes(null)) throw new Error(`only ${ours.filter((s) => s !== null).length} of ${BOOT_SEATS} lab VMs showed the marker within ${WAIT_MS} ms`);
    for (const s of starts) await waitOp(s.headers.get('azure-asyncoperation'), 60_000, 100);
    // The lab's VMs go before the baseline runs, so the two never share the CPUs.
    await ok('DELETE', labPath(lab));
    labs.splice(labs.indexOf(lab), 1);
    bootKeys = [];

    log(`boot: baseline, ${BOOT_SEATS} plain qemu-system-x86_64 at once`);
    const dir = join(work, 'plain');
    mkdirSync(dir);
    const plainLogs = Array.from({ length: BOOT_SEATS }, (_, i) => join(dir, `plain-${i}.log`));
    const t1 = now();
    for (const file of plainLogs) {
      plain.push(
        spawn(
          'qemu-system-x86_64',
          ['-machine', 'q35,accel=tcg', '-cpu', 'max', '-m', '1024', '-smp', '1', '-display', 'none', '-nodefaults']
            .concat(['-serial', `file:${file}`, '-device', 'virtio-rng-pci', '-nic', 'none'])
            .concat(['-drive', `file=${guest},if=virtio,format=raw,snapshot=on`]),
          { stdio: 'ignore' },
        ),
      );
    }
    const theirs = await waitMarkers(plainLogs, t1, WAIT_MS);
    const theirsAll = now() - t1;
    for (const c of plain.splice(0)) c.kill('SIGKILL');
    if (theirs.includes(null)) throw new Error(`only ${theirs.filter((s) => s !== null).length} of ${BOOT_SEATS} plain QEMUs showed the marker`);
    // Creating a lab with a template: the lab's own work, then the template's boot, against one plain boot alone.
    log('boot: a lab with a template VM, then one plain boot of the same disk');
    labs.push('with-template');
    const tc = now();
    const created = await ok('PUT', labPath('with-template'), {
      location: 'site-a',
      properties: {
        labPlanId: planId,
        title: 'bench',
        virtualMachineProfile: {
          createOption: 'TemplateVM',
          imageReference: { id: `${planId}/images/guest` },
          sku: { name: 'Standard_B1s', capacity: 0 },
          usageQuota: 'PT10H',
        },
      },
    });
    await waitOp(created.headers.get('azure-asyncoperation'));
    const createOp = now() - tc;
    const tpl = await server.services.store.db
      .selectFrom('virtual_machines')
      .select('id')
      .where('name', '=', 'labs/with-template/template')
      .executeTakeFirstOrThrow();
    bootKeys = [tpl.id];
    const [tplMarker] = await waitMarkers([join(dataDir, 'compute', 'vms', tpl.id, 'serial.log')], tc, WAIT_MS);
    await ok('DELETE', labPath('with-template'));
    labs.splice(labs.indexOf('with-template'), 1);
    bootKeys = [];
    const one = join(dir, 'plain-one.log');
    const t2 = now();
    plain.push(
      spawn(
        'qemu-system-x86_64',
        ['-machine', 'q35,accel=tcg', '-cpu', 'max', '-m', '1024', '-smp', '1', '-display', 'none', '-nodefaults']
          .concat(['-serial', `file:${one}`, '-device', 'virtio-rng-pci', '-nic', 'none'])
          .concat(['-drive', `file=${guest},if=virtio,format=raw,snapshot=on`]),
        { stdio: 'ignore' },
      ),
    );
    const [plainOne] = await waitMarkers([one], t2, WAIT_MS);
    for (const c of plain.splice(0)) c.kill('SIGKILL');
    result.labCreate = { createOperationSeconds: createOp, templateMarkerSeconds: tplMarker, plainBootSeconds: plainOne };
    console.log(
      `create a lab with a template VM: operation ${fmt(createOp, 2)} s (lab, template disk, QEMU started); template at its marker after ${fmt(tplMarker, 1)} s   vs plain QEMU boot ${fmt(plainOne, 1)} s: lab overhead ${fmt(tplMarker - plainOne, 1)} s (target < 2 s: ${tplMarker - plainOne < 2 ? 'met' : 'NOT met'})`,
    );

    result.boot = {
      accel: 'tcg',
      vms: BOOT_SEATS,
      publishSeconds: pub.seconds,
      labforgeAllSeconds: oursAll,
      labforgeEachSeconds: ours,
      plainQemuAllSeconds: theirsAll,
      plainQemuEachSeconds: theirs,
    };
    console.log(
      `boot ${BOOT_SEATS} lab VMs at once to the marker (tcg): ${fmt(oursAll, 1)} s (median VM ${fmt(median(ours), 1)} s)   vs ${BOOT_SEATS} plain qemu-system-x86_64 at once ${fmt(theirsAll, 1)} s (median ${fmt(median(theirs), 1)} s)   ratio ${fmt(oursAll / theirsAll)}`,
    );
    console.log(`  (publish of the ${BOOT_SEATS}-seat boot lab, base materialised on the way: ${fmt(pub.seconds, 2)} s; not part of the boot figure)`);
  }
} finally {
  for (const c of plain) c.kill('SIGKILL');
  for (const lab of labs) {
    const r = await api('DELETE', labPath(lab)).catch((err) => ({ status: 0, body: String(err) }));
    if (r.status !== 200 && r.status !== 204) log(`could not delete lab ${lab}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  }
  // Lab VMs keep running when the server stops: stop any the API could not remove.
  for (const key of bootKeys) await server.services.vms.driver.delete(key).catch(() => undefined);
  await server.close();
  rmSync(work, { recursive: true, force: true });
}

result.elapsedSeconds = Math.round((Date.now() - started.getTime()) / 1000);
if (args.save) {
  const out = join(ROOT, 'bench', 'results', `labs-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`results: ${out}`);
}
