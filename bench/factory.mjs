// Image factory benchmark: what the factory's engine (dist/factory/engine.js)
// does to distribute golden images to lab accounts, against the plain way,
// side by side in one run. Every figure is a ratio:
//   1. distribute: a real server in this process; a Generalized base image
//      (an empty disk), the recipe Linux/Web (gallery factory-images/golden)
//      whose version 1.0.0 already exists, 1 GiB of data in site-a only; 20
//      lab accounts (10 in site-a, 10 in site-b) with the gallery attached,
//      all taking "Linux" in labs.json. "Distribute" is run(…, ['distribute']):
//      it replicates 1.0.0 to site-b once (only the chunks site-b lacks) and
//      enables the image in the 20 lab accounts. Against what the Azure image
//      factory scripts do, a full copy of the image's disk into each lab (20
//      × cp --sparse=never + sync; a few are timed and scaled to 20). The
//      bytes stored in site-b afterwards (the server's usage report) against
//      20 × 1 GiB;
//   2. no-op re-run: the same run(…, ['distribute']) again, which must change
//      nothing, against the first distribute;
//   3. plan at scale: 50 more recipes (Batch/Image01…50, no versions yet) in
//      the same gallery, the 20 lab accounts taking "Linux" and "Batch";
//      plan() (read the server once, simulate every phase), against 20
//      sequential GETs of each lab account's image list through the same
//      client (the least any plan reads: what each lab account offers now).
// The factory talks to the server over HTTP with the API client (a new
// connection per request, as the CLI does), polling every 50 ms (the CLI's
// default is 2 s). Data is AES-CTR keystream (incompressible, no duplicate
// blocks); files go under os.tmpdir() and are removed at the end.
// Usage: node bench/factory.mjs [--save] [--only distribute|plan]
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { dist, fmt, fmtSize, fullCopySeconds, GiB, httpApi, log, median, now, ROOT, sh, writeKeystream } from './lib/common.mjs';

const { values: args } = parseArgs({ options: { save: { type: 'boolean', default: false }, only: { type: 'string' } } });
if (args.only && !['distribute', 'plan'].includes(args.only)) {
  log(`--only must be distribute or plan, not '${args.only}'`);
  process.exit(2);
}
const want = (part) => !args.only || args.only === part;
const LABS = 20;
const BATCH = 50;
const COPIES = 3;
const ROUNDS = 3;
const POLL_MS = 50;
const WAIT_MS = 10 * 60_000;
const RG_API = 'api-version=2021-04-01';
const COMPUTE = 'api-version=2025-03-03';
const LS = 'api-version=2022-08-01';
const CORE = 'api-version=2026-11-01';

const { loadConfig } = await dist('config/config.js');
const { startServer } = await dist('server.js');
const { SYSTEM } = await dist('services/common.js');
const { ApiClient } = await dist('client/api-client.js');
const { plan, run, TAG } = await dist('factory/engine.js');
const { loadRecipes, parseLabsFile } = await dist('factory/recipes.js');

const work = mkdtempSync(join(tmpdir(), 'labforge-bench-factory-'));
const dataDir = join(work, 'data');
mkdirSync(dataDir);
const started = new Date();
const result = {
  benchmark: 'factory',
  startedAt: started.toISOString(),
  machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model, loadavg: loadavg() },
  settings: { labAccounts: LABS, batchRecipes: BATCH, pollMs: POLL_MS, maxConcurrentJobs: 20, retries: 2 },
};

/** Writes `size` bytes of keystream (label-seeded) to `file` and fsyncs it. */
const writeData = (file, size, label) => writeKeystream(file, size, `labforge-bench-factory:${label}`);

/** Writes files (path → object, as JSON) under a new folder `dir`. */
function tree(dir, files) {
  for (const [p, v] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), JSON.stringify(v, null, 2));
  }
  return dir;
}

// ---- the server and its API ----

const env = { LABFORGE_DATA_DIR: dataDir, LABFORGE_LISTEN: '127.0.0.1:0', LABFORGE_TLS: '0', LABFORGE_BUILTIN_IMAGES: 'off', LABFORGE_ACCEL: 'tcg' };
const config = loadConfig({ env });
config.operations.pollMilliseconds = 50;
const server = await startServer(config);
const token = server.firstAdminToken;
const sub = (await server.services.groups.listSubscriptions())[0].id;
const rg = (group) => `/subscriptions/${sub}/resourceGroups/${group}`;
const baseGallery = `${rg('bases')}/providers/Microsoft.Compute/galleries/os`;
const golden = `${rg('factory-images')}/providers/Microsoft.Compute/galleries/golden`;
const labName = (i) => `lab-${String(i + 1).padStart(2, '0')}`;
const labRegion = (i) => (i < LABS / 2 ? 'site-a' : 'site-b');

const { api, ok, waitOp } = httpApi(server.url, token, WAIT_MS);

/** The API client the factory uses, counting the requests it sends. */
class CountingClient extends ApiClient {
  requests = 0;
  request(...a) {
    this.requests++;
    return super.request(...a);
  }
}
const client = new CountingClient({ baseUrl: server.url, token });
const options = {
  client,
  subscription: sub,
  factoryGroup: 'factory',
  maxConcurrentJobs: result.settings.maxConcurrentJobs,
  retries: result.settings.retries,
  imagesToSave: 2,
  log: (line) => log(`  factory: ${line}`),
  pollMs: POLL_MS,
};
const changes = (actions) => actions.filter((a) => a.kind !== 'skip' && a.kind !== 'keep');
const describe = (a) => `${a.kind} ${a.image ?? a.imagePath ?? a.gallery ?? a.vm}${a.lab ? ` ${a.lab}` : ''}${a.regions ? ` ${a.regions.join('+')}` : ''}`;
const tally = (actions) => {
  const n = new Map();
  for (const a of actions) n.set(a.kind, (n.get(a.kind) ?? 0) + 1);
  return [...n].map(([k, c]) => `${c} ${k}`).join(', ');
};

/** Runs `fn` with the client's request counter; returns its value, seconds and requests. */
async function counted(fn) {
  const before = client.requests;
  const t0 = now();
  const value = await fn();
  return { value, seconds: now() - t0, requests: client.requests - before };
}

/** Bytes the server's usage report says a region's store holds. */
async function storedBytes(region) {
  const r = await ok('GET', `/subscriptions/${sub}/providers/Labforge.Core/imageStores/usage?${CORE}&region=${region}`);
  return r.body.regions.find((x) => x.region === region).totalStoredBytes;
}

const recipe = (text) => ({
  base: { image: 'bases/os/linux' },
  gallery: { resourceGroup: 'factory-images', name: 'golden' },
  customData: `#cloud-config\nwrite_files:\n  - path: /etc/recipe\n    content: ${text}\n`,
});
const labsFile = (paths) => ({
  Labs: Array.from({ length: LABS }, (_, i) => ({ SubscriptionId: sub, ResourceGroup: 'school', LabName: labName(i), ImagePaths: paths })),
});
/** The engine's inputs, as the CLI reads them: the recipe folder and labs.json. */
function inputs(dir, labs) {
  const text = JSON.stringify(labs, null, 2);
  return { recipes: loadRecipes(dir), labs: parseLabsFile(text, 'labs.json'), labsFile: { name: 'labs.json', text } };
}

const setupStart = now();
try {
  // ---- setup: the base, the golden gallery with Linux-Web 1.0.0 (1 GiB, site-a), 20 lab accounts ----

  for (const group of ['bases', 'factory-images', 'school']) await ok('PUT', `${rg(group)}?${RG_API}`, { location: 'site-a' });
  await ok('PUT', `${baseGallery}?${COMPUTE}`, { location: 'site-a' });
  await ok('PUT', `${baseGallery}/images/linux?${COMPUTE}`, {
    location: 'site-a',
    properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'bench', offer: 'linux', sku: '1' } },
  });
  const base = await ok('PUT', `${baseGallery}/images/linux/versions/1.0.0?${COMPUTE}`, {
    location: 'site-a',
    properties: {
      publishingProfile: { targetRegions: [{ name: 'site-a' }] },
      storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } } },
    },
  });
  await waitOp(base.headers.get('azure-asyncoperation'));

  const recipesDir = tree(join(work, 'recipes'), { 'Linux/Web.json': recipe('web') });
  const web = loadRecipes(recipesDir)[0];
  await ok('PUT', `${golden}?${COMPUTE}`, { location: 'site-a' });
  await ok('PUT', `${golden}/images/Linux-Web?${COMPUTE}`, {
    location: 'site-a',
    tags: { [TAG.imagePath]: 'Linux/Web' },
    properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'labforge-factory', offer: 'Linux', sku: 'Linux-Web' } },
  });
  log('setup: 1 GiB version Linux-Web 1.0.0, imported into site-a');
  const raw = join(work, 'web.raw');
  writeData(raw, GiB, 'web');
  // Tagged as the factory tags what it built, so the build phase would skip it: this run is about distribution.
  const stamp = createHash('sha256').update(`${baseGallery}/images/linux/versions/1.0.0`).digest('hex').slice(0, 16);
  const t0 = now();
  const { operation } = await server.services.versions.createOrUpdate(
    SYSTEM,
    sub,
    'factory-images',
    'golden',
    'Linux-Web',
    '1.0.0',
    {
      tags: { [TAG.imagePath]: 'Linux/Web', [TAG.recipeHash]: web.contentHash, [TAG.base]: stamp },
      publishingProfile: { targetRegions: [{ name: 'site-a' }] },
    },
    'put',
    undefined,
    { osDisk: { sizeGB: 0, hostCaching: 'ReadWrite', source: { kind: 'file', path: raw } }, dataDisks: [] },
  );
  await waitOp(`/subscriptions/${sub}/providers/Labforge.Core/operations/${operation.id}?${CORE}`, WAIT_MS, 100);
  result.importSeconds = now() - t0;
  for (let i = 0; i < LABS; i++) {
    await ok('PUT', `${rg('school')}/providers/Microsoft.LabServices/labPlans/${labName(i)}?${LS}`, {
      location: labRegion(i),
      properties: { sharedGalleryId: golden },
    });
  }
  const linux = inputs(recipesDir, labsFile(['Linux']));
  const before = await plan(options, linux);
  const expected = ['replicate Linux-Web site-b', ...Array.from({ length: LABS }, (_, i) => `enable Linux-Web school/${labName(i)}`)];
  const planned = changes(before.actions).map(describe);
  if (JSON.stringify(planned.sort()) !== JSON.stringify(expected.sort())) throw new Error(`unexpected plan before distributing: ${planned.join('; ')}`);
  log(`setup done in ${fmt(now() - setupStart, 1)} s (import ${fmt(result.importSeconds, 1)} s); plan: ${tally(before.actions)}`);

  // ---- 1. distribute one image to 20 lab accounts ----

  if (want('distribute')) {
    const siteBBefore = await storedBytes('site-b');
    log(`distribute: run(['distribute']) to ${LABS} lab accounts`);
    const first = await counted(() => run(options, linux, ['distribute']));
    const report = first.value;
    if (report.result !== 'Succeeded') throw new Error(`distribute failed: ${report.failures.join('; ')}`);
    const done = changes(report.actions);
    if (done.length !== expected.length) throw new Error(`distribute did ${done.map(describe).join('; ')}`);
    // What the server now has: the replica in site-b, the image enabled in every lab account.
    const v = (await ok('GET', `${golden}/images/Linux-Web/versions/1.0.0?${COMPUTE}&$expand=ReplicationStatus`)).body;
    const replicas = v.properties.replicationStatus.summary.map((s) => `${s.region}:${s.state}`).sort();
    if (replicas.join(',') !== 'site-a:Completed,site-b:Completed') throw new Error(`replication status: ${replicas.join(', ')}`);
    let enabled = 0;
    for (let i = 0; i < LABS; i++) {
      const imgs = (await ok('GET', `${rg('school')}/providers/Microsoft.LabServices/labPlans/${labName(i)}/images?${LS}`)).body.value;
      enabled += imgs.some((x) => x.name === 'Linux-Web' && x.properties.enabledState === 'Enabled') ? 1 : 0;
    }
    if (enabled !== LABS) throw new Error(`Linux-Web is enabled in ${enabled} of ${LABS} lab accounts`);
    const siteB = await storedBytes('site-b');
    const siteA = await storedBytes('site-a');
    const siteBDisk = Number(sh('du', ['-s', '--block-size=1', join(dataDir, 'regions', 'site-b')]).split('\t')[0]);
    const replicate = done.find((a) => a.kind === 'replicate');
    const enables = done.filter((a) => a.kind === 'enable');

    log(`distribute: baseline, ${COPIES} full copies of 1 GiB`);
    const copies = fullCopySeconds(raw, COPIES, work);
    const perCopy = copies.reduce((a, b) => a + b, 0) / copies.length;
    const fullCopies = perCopy * LABS;

    // ---- 2. the same run again: nothing to do ----

    log(`no-op: run(['distribute']) again, ${ROUNDS} times`);
    const noops = [];
    for (let i = 0; i < ROUNDS; i++) {
      const again = await counted(() => run(options, linux, ['distribute']));
      if (again.value.result !== 'Succeeded' || changes(again.value.actions).length !== 0) {
        throw new Error(`the re-run was not a no-op: ${again.value.actions.map(describe).join('; ')} ${again.value.failures.join('; ')}`);
      }
      noops.push({ seconds: again.seconds, requests: again.requests, changes: changes(again.value.actions).length });
    }
    const noop = median(noops.map((x) => x.seconds));

    result.distribute = {
      imageBytes: GiB,
      labAccounts: { total: LABS, siteA: LABS / 2, siteB: LABS / 2 },
      seconds: first.seconds,
      requests: first.requests,
      actions: done.map((a) => ({ action: describe(a), status: a.status, seconds: a.seconds, attempts: a.attempts })),
      replicateSeconds: replicate.seconds,
      enableSecondsMax: Math.max(...enables.map((a) => a.seconds)),
      fullCopyEachSeconds: copies,
      fullCopiesTimed: COPIES,
      fullCopiesSeconds: fullCopies,
      storedBytes: { siteABefore: siteA, siteBBefore, siteB, siteBOnDisk: siteBDisk, fullCopies: LABS * GiB },
    };
    result.noop = { rounds: noops, medianSeconds: noop, changes: 0 };
    console.log(
      `distribute 1 GiB image to ${LABS} lab accounts (10 site-a, 10 site-b): ${fmt(first.seconds, 2)} s (${first.requests} requests; replicate to site-b ${fmt(replicate.seconds, 1)} s, ${enables.length} enables)   vs ${LABS} full copies of 1 GiB (${COPIES} timed, scaled): ${fmt(fullCopies, 1)} s   ratio ${fmt(first.seconds / fullCopies, 4)}`,
    );
    console.log(
      `stored in site-b afterwards: ${fmtSize(siteB)} (store usage; ${fmtSize(siteBDisk)} on disk with manifests and directories; site-a holds ${fmtSize(siteA)})   vs ${LABS} × 1 GiB = ${fmtSize(LABS * GiB)}   ratio ${fmt(siteB / (LABS * GiB), 4)}`,
    );
    console.log(
      `no-op re-run of distribute (0 changes, ${noops[0].requests} requests): ${fmt(noop, 3)} s (median of ${ROUNDS})   vs the first distribute ${fmt(first.seconds, 2)} s   ratio ${fmt(noop / first.seconds, 3)}`,
    );
  }
  rmSync(raw, { force: true });

  // ---- 3. plan at scale: 51 recipes, 20 lab accounts ----

  if (want('plan')) {
    const files = { 'Linux/Web.json': recipe('web') };
    for (let i = 1; i <= BATCH; i++) files[`Batch/Image${String(i).padStart(2, '0')}.json`] = recipe(`batch-${i}`);
    const batchDir = tree(join(work, 'batch'), files);
    const batch = inputs(batchDir, labsFile(['Linux', 'Batch']));
    log(`plan: ${BATCH + 1} recipes, ${LABS} lab accounts taking Linux and Batch; ${ROUNDS} rounds`);
    const rounds = [];
    for (let i = 0; i < ROUNDS; i++) {
      const p = await counted(() => plan(options, batch));
      rounds.push({ seconds: p.seconds, requests: p.requests, actions: p.value.actions.length, summary: tally(p.value.actions) });
    }
    const planSeconds = median(rounds.map((r) => r.seconds));
    const gets = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t = await counted(async () => {
        for (let j = 0; j < LABS; j++) await client.listPlanImages(sub, 'school', labName(j), true);
      });
      gets.push({ seconds: t.seconds, requests: t.requests });
    }
    const baseline = median(gets.map((g) => g.seconds));
    result.plan = {
      recipes: BATCH + 1,
      labAccounts: LABS,
      rounds,
      medianSeconds: planSeconds,
      baseline: { what: `${LABS} sequential GETs of each lab account's image list (includeHidden), same client`, rounds: gets, medianSeconds: baseline },
    };
    console.log(
      `plan ${BATCH + 1} recipes × ${LABS} lab accounts (${rounds[0].requests} requests; ${rounds[0].summary}): ${fmt(planSeconds, 3)} s (median of ${ROUNDS})   vs ${LABS} sequential GETs of each lab account's image list ${fmt(baseline, 3)} s   ratio ${fmt(planSeconds / baseline)}`,
    );
  }
} finally {
  await server.close();
  rmSync(work, { recursive: true, force: true });
}

result.elapsedSeconds = Math.round((Date.now() - started.getTime()) / 1000);
if (args.save) {
  const out = join(ROOT, 'bench', 'results', `factory-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`results: ${out}`);
}
