// API throughput benchmark: starts a real labforge server in this process
// (HTTPS, SQLite by default, PostgreSQL too when LABFORGE_BENCH_PG_URL is set),
// fills a gallery with 1,000 image definitions through the API, then measures
// reads with autocannon next to a baseline HTTPS server that serves the same
// bytes with no auth and no database. The load generator runs in a worker
// thread. Usage: node bench/api-throughput.mjs [--save] [--duration S]
// [--walk-duration S] [--warmup S] [--connections N] [--images N]
// [--case get|list|walk]... [--target labforge|baseline]... (for profiling)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { loadConfig } from '../dist/config/config.js';
import { startServer } from '../dist/server.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const COMPUTE = 'api-version=2025-03-03';

const { values: args } = parseArgs({
  options: {
    save: { type: 'boolean', default: false },
    duration: { type: 'string', default: '10' },
    'walk-duration': { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '10' },
    images: { type: 'string', default: '1000' },
    // For profiling one path (node --cpu-prof): run only these cases / targets.
    case: { type: 'string', multiple: true },
    target: { type: 'string', multiple: true },
  },
});
const opts = {
  duration: Number(args.duration),
  walkDuration: Number(args['walk-duration']),
  warmup: Number(args.warmup),
  connections: Number(args.connections),
  pipelining: 1,
  images: Number(args.images),
  cases: args.case ?? ['get', 'list', 'walk'],
  targets: args.target ?? ['labforge', 'baseline'],
};

const log = (msg) => process.stderr.write(`${msg}\n`);

// ---- small HTTPS client for setup (verifies the certificate against labforge's CA) ----

function request(agent, origin, method, path, token, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      `${origin}${path}`,
      {
        method,
        agent,
        headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function expectOk(p, what) {
  const r = await p;
  if (r.status < 200 || r.status > 299) throw new Error(`${what}: HTTP ${r.status} ${r.raw.toString('utf8').slice(0, 500)}`);
  return r;
}

// ---- baseline: same certificate, same bytes, no auth, no database ----

async function startBaseline(tlsDir, responses) {
  const key = readFileSync(join(tlsDir, 'server-key.pem'));
  const cert = readFileSync(join(tlsDir, 'server.pem'));
  const server = https.createServer({ key, cert, keepAliveTimeout: 72_000 }, (req, res) => {
    const hit = responses.get(req.url);
    if (!hit) {
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end('{"error":{"code":"NotFound"}}');
      return;
    }
    res.writeHead(200, hit.headers).end(hit.body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `https://127.0.0.1:${server.address().port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Fetches labforge's answer to `path` and stores the bytes (and comparable headers) for the baseline. */
async function capture(agent, origin, path, token, responses) {
  const r = await expectOk(request(agent, origin, 'GET', path, token), `GET ${path}`);
  const headers = { 'content-type': r.headers['content-type'], 'content-length': r.raw.length, 'x-ms-request-id': r.headers['x-ms-request-id'] };
  if (r.headers.etag) headers.etag = r.headers.etag;
  responses.set(path, { headers, body: r.raw });
  return r;
}

// ---- load generator in a worker thread ----

function startLoadWorker() {
  const worker = new Worker(join(HERE, 'lib', 'load-worker.mjs'));
  return {
    run: (job) =>
      new Promise((resolve, reject) => {
        const onMessage = (m) => {
          worker.off('error', reject);
          if (m.ok) resolve(m.result);
          else reject(new Error(m.error));
        };
        worker.once('message', onMessage);
        worker.once('error', reject);
        worker.postMessage(job);
      }),
    close: () => worker.terminate(),
  };
}

/** Runs one job and reports how busy the server thread (this one) was meanwhile. */
async function measure(load, job) {
  const before = performance.eventLoopUtilization();
  const result = await load.run(job);
  result.serverThreadUtilization = performance.eventLoopUtilization(before).utilization;
  if (result.errors || result.timeouts || result.non2xx) {
    throw new Error(`${job.path}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx responses — the figures would be meaningless`);
  }
  return result;
}

// ---- one metadata store ----

async function benchStore(store, load, pgAdminUrl) {
  const dataDir = mkdtempSync(join(tmpdir(), 'labforge-bench-'));
  let scratchDb;
  let pgUrl;
  if (store === 'postgres') {
    scratchDb = `lfbench_${Date.now().toString(36)}_${process.pid}`;
    const admin = new pg.Client({ connectionString: pgAdminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${scratchDb}`);
    await admin.end();
    const u = new URL(pgAdminUrl);
    u.pathname = `/${scratchDb}`;
    pgUrl = u.toString();
  }
  let server;
  let baseline;
  let agent;
  try {
    const t0 = performance.now();
    const config = loadConfig({
      env: { LABFORGE_DATA_DIR: dataDir, LABFORGE_LISTEN: '127.0.0.1:0', ...(pgUrl ? { LABFORGE_DATABASE_URL: pgUrl } : {}) },
    });
    server = await startServer(config);
    log(`[${store}] labforge up at ${server.url} in ${Math.round(performance.now() - t0)} ms (includes creating the CA and certificate)`);
    const token = server.firstAdminToken;
    const ca = readFileSync(server.caFile);
    agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca });
    const origin = server.url;

    // Seed: subscription, resource group, gallery, N image definitions.
    const subs = JSON.parse((await expectOk(request(agent, origin, 'GET', '/subscriptions?api-version=2022-12-01', token), 'list subscriptions')).raw);
    const sub = subs.value[0].subscriptionId;
    await expectOk(
      request(agent, origin, 'PUT', `/subscriptions/${sub}/resourcegroups/bench-rg?api-version=2021-04-01`, token, { location: 'site-a' }),
      'PUT group',
    );
    const galleryPath = `/subscriptions/${sub}/resourceGroups/bench-rg/providers/Microsoft.Compute/galleries/benchgallery`;
    await expectOk(request(agent, origin, 'PUT', `${galleryPath}?${COMPUTE}`, token, { location: 'site-a' }), 'PUT gallery');
    const names = Array.from({ length: opts.images }, (_, n) => `image-${String(n).padStart(4, '0')}`);
    const tSeed = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < names.length) {
          const n = next++;
          const body = {
            location: 'site-a',
            properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'Bench', offer: 'Offer', sku: `sku-${n}` } },
          };
          await expectOk(request(agent, origin, 'PUT', `${galleryPath}/images/${names[n]}?${COMPUTE}`, token, body), `PUT image ${names[n]}`);
        }
      }),
    );
    const seedSeconds = (performance.now() - tSeed) / 1000;
    log(`[${store}] created ${opts.images} image definitions in ${seedSeconds.toFixed(1)} s (8 concurrent PUTs)`);

    // Capture labforge's answers for the baseline: one image, the first page, and every page of a walk.
    const responses = new Map();
    const getPath = `${galleryPath}/images/${names[Math.floor(names.length / 2)]}?${COMPUTE}`;
    const listPath = `${galleryPath}/images?${COMPUTE}`;
    await capture(agent, origin, getPath, token, responses);
    let pagePath = listPath;
    let walkedItems = 0;
    let pages = 0;
    while (pagePath) {
      const page = JSON.parse((await capture(agent, origin, pagePath, token, responses)).raw);
      walkedItems += page.value.length;
      pages++;
      pagePath = page.nextLink ? (({ pathname, search }) => `${pathname}${search}`)(new URL(page.nextLink)) : undefined;
    }
    if (walkedItems !== opts.images) throw new Error(`walking the list returned ${walkedItems} items, expected ${opts.images}`);
    baseline = await startBaseline(join(config.dataDir, 'tls'), responses);
    const bodyBytes = { get: responses.get(getPath).body.length, firstPage: responses.get(listPath).body.length };
    log(`[${store}] baseline up at ${baseline.origin}; GET body ${bodyBytes.get} B, first page ${bodyBytes.firstPage} B, ${pages} pages per walk`);

    const headers = { authorization: `Bearer ${token}` };
    const cases = [
      { id: 'get', name: 'GET one image definition', kind: 'autocannon', path: getPath },
      { id: 'list', name: 'list images, first page (100)', kind: 'autocannon', path: listPath },
      { id: 'walk', name: `full walk of ${opts.images} via nextLink`, kind: 'walk', path: listPath },
    ].filter((c) => opts.cases.includes(c.id));
    const rows = [];
    for (const c of cases) {
      for (const [target, targetOrigin] of [
        ['labforge', origin],
        ['baseline', baseline.origin],
      ].filter(([t]) => opts.targets.includes(t))) {
        const base = { kind: c.kind, origin: targetOrigin, path: c.path, headers, ca };
        const job =
          c.kind === 'walk'
            ? { ...base, duration: opts.walkDuration, expectItems: opts.images }
            : { ...base, duration: opts.duration, connections: opts.connections, pipelining: opts.pipelining };
        if (opts.warmup > 0) await load.run({ ...job, duration: opts.warmup });
        log(`[${store}] ${c.name} — ${target} …`);
        const result = await measure(load, job);
        rows.push({ store, case: c.name, kind: c.kind, target, ...result });
      }
    }
    return { store, seedSeconds, bodyBytes, pagesPerWalk: pages, rows };
  } finally {
    agent?.destroy();
    await baseline?.close();
    await server?.close();
    if (scratchDb) {
      const admin = new pg.Client({ connectionString: pgAdminUrl });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${scratchDb} WITH (FORCE)`);
      await admin.end();
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---- report ----

const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const ratio = (a, b) => (Number.isFinite(a) && b > 0 ? (a / b).toFixed(2) : '–');

function table(results) {
  const head = [
    'store',
    'case',
    'labforge req/s',
    'baseline req/s',
    'tput ratio',
    'lf p50',
    'lf p90',
    'lf p99',
    'bl p50',
    'bl p90',
    'bl p99',
    'p50 ratio',
    'p99 ratio',
    'lf ELU',
    'bl ELU',
  ];
  const lines = [head];
  for (const r of results) {
    for (const name of [...new Set(r.rows.map((x) => x.case))]) {
      const none = { requestsPerSecond: Number.NaN, latencyMs: {}, serverThreadUtilization: Number.NaN };
      const lf = r.rows.find((x) => x.case === name && x.target === 'labforge') ?? none;
      const bl = r.rows.find((x) => x.case === name && x.target === 'baseline') ?? none;
      const kind = r.rows.find((x) => x.case === name).kind;
      const unit = kind === 'walk' ? 2 : 0;
      lines.push([
        r.store,
        kind === 'walk' ? `${name} (walks/s, ms/walk)` : name,
        fmt(lf.requestsPerSecond, unit),
        fmt(bl.requestsPerSecond, unit),
        ratio(lf.requestsPerSecond, bl.requestsPerSecond),
        fmt(lf.latencyMs.p50),
        fmt(lf.latencyMs.p90),
        fmt(lf.latencyMs.p99),
        fmt(bl.latencyMs.p50),
        fmt(bl.latencyMs.p90),
        fmt(bl.latencyMs.p99),
        ratio(lf.latencyMs.p50, bl.latencyMs.p50),
        ratio(lf.latencyMs.p99, bl.latencyMs.p99),
        fmt(lf.serverThreadUtilization, 2),
        fmt(bl.serverThreadUtilization, 2),
      ]);
    }
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => String(l[i]).length)));
  const row = (l) => `| ${l.map((v, i) => (i < 2 ? String(v).padEnd(widths[i]) : String(v).padStart(widths[i]))).join(' | ')} |`;
  return [row(head), `|${widths.map((w, i) => (i < 2 ? `${'-'.repeat(w + 2)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...lines.slice(1).map(row)].join('\n');
}

// ---- main ----

const machine = {
  nproc: availableParallelism(),
  cpu: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  loadavgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
};
/** The commit measured, and whether src/ had uncommitted changes (read-only git calls). */
function gitState() {
  const git = (...a) => execFileSync('git', a, { cwd: join(HERE, '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { commit: git('rev-parse', 'HEAD'), srcDirty: git('status', '--porcelain', '--', 'src') !== '' };
  } catch {
    return { commit: 'unknown', srcDirty: null };
  }
}
const started = new Date();
log(`labforge API throughput benchmark — ${machine.nproc} CPUs (${machine.cpu}), Node ${machine.node}`);
log(
  `per case: ${opts.warmup} s warm-up, then ${opts.duration} s (autocannon, ${opts.connections} connections, pipelining ${opts.pipelining}) or ${opts.walkDuration} s (walk loop, 1 connection)`,
);

const load = startLoadWorker();
const results = [];
try {
  results.push(await benchStore('sqlite', load));
  const pgUrl = process.env.LABFORGE_BENCH_PG_URL;
  if (pgUrl) results.push(await benchStore('postgres', load, pgUrl));
  else log('LABFORGE_BENCH_PG_URL is not set: skipping PostgreSQL');
} finally {
  await load.close();
}

const report = {
  benchmark: 'api-throughput',
  startedAt: started.toISOString(),
  elapsedSeconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
  machine,
  git: gitState(),
  options: opts,
  tls: 'autocannon gets the labforge CA in tlsOptions.ca but forces rejectUnauthorized=false; setup and walk requests verify the certificate',
  results,
};
console.log('');
console.log(table(results));
console.log('');
console.log(
  'req/s: completed requests / duration (walk rows: full walks per second, one connection). Latencies in ms (walk rows: per full walk). Ratios are labforge/baseline. ELU: event-loop utilisation of the server thread (both servers share it) during the run; 1.00 means the server thread was the bottleneck.',
);
const stamp = started.toISOString().replace(/[:.]/g, '-');
const out = args.save ? join(HERE, 'results', `api-throughput-${stamp}.json`) : join(tmpdir(), `labforge-api-throughput-${stamp}.json`);
mkdirSync(dirname(out), { recursive: true });
// Arrays of plain values on one line, as biome formats JSON (bench/ is linted).
const json = JSON.stringify(report, null, 2).replace(/\[\n\s+([^[\]{}]*?)\n\s*\]/g, (_, inner) => `[${inner.split(/,\n\s+/).join(', ')}]`);
writeFileSync(out, `${json}\n`);
console.log(`results: ${out} (${report.elapsedSeconds} s in total)`);
