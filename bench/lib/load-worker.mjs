// Load generator for bench/api-throughput.mjs, run in a worker thread so the
// client never shares an event loop with the servers under test. Receives one
// job per message: an autocannon run, or a timed loop of full nextLink walks.
import https from 'node:https';
import { parentPort } from 'node:worker_threads';
import autocannon from 'autocannon';

/** Percentile of an ascending array (nearest rank). */
function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * One fixed-duration autocannon run over HTTPS with keep-alive. Latencies are
 * taken from autocannon's per-response event (sub-millisecond resolution; its
 * own histogram rounds to whole milliseconds, too coarse for the baseline).
 */
function runAutocannon(job) {
  const latencies = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${job.origin}${job.path}`,
        method: 'GET',
        headers: job.headers,
        connections: job.connections,
        pipelining: job.pipelining,
        duration: job.duration,
        // autocannon hands these to tls.connect but forces rejectUnauthorized: false.
        tlsOptions: { ca: job.ca },
      },
      (err, r) => {
        if (err) return reject(err);
        const sorted = latencies.sort((a, b) => a - b);
        const total = sorted.reduce((a, b) => a + b, 0);
        resolve({
          requestsPerSecond: r.totalCompletedRequests / r.duration,
          requestsTotal: r.totalCompletedRequests,
          durationSeconds: r.duration,
          bytesPerSecond: r.totalBytes / r.duration,
          latencyMs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), mean: total / sorted.length, max: sorted.at(-1) },
          errors: r.errors,
          timeouts: r.timeouts,
          non2xx: r.non2xx,
        });
      },
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  });
}

function get(agent, origin, path, headers) {
  return new Promise((resolve, reject) => {
    const req = https.request(`${origin}${path}`, { agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
        else resolve(Buffer.concat(chunks).toString('utf8'));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Walks every page from `path` through nextLink, again and again for `duration`
 * seconds, on one keep-alive connection. nextLink names labforge's origin; the
 * walk follows its path and query on `origin`, so the baseline gets the same URLs.
 */
async function runWalk(job) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: job.ca });
  const times = [];
  let pages = 0;
  const end = performance.now() + job.duration * 1000;
  try {
    while (performance.now() < end) {
      const t0 = performance.now();
      let next = job.path;
      let items = 0;
      while (next) {
        const body = JSON.parse(await get(agent, job.origin, next, job.headers));
        items += body.value.length;
        pages++;
        next = body.nextLink ? (({ pathname, search }) => `${pathname}${search}`)(new URL(body.nextLink)) : undefined;
      }
      if (items !== job.expectItems) throw new Error(`a full walk returned ${items} items, expected ${job.expectItems}`);
      times.push(performance.now() - t0);
    }
  } finally {
    agent.destroy();
  }
  const sorted = [...times].sort((a, b) => a - b);
  const total = times.reduce((a, b) => a + b, 0);
  return {
    requestsPerSecond: times.length / (total / 1000),
    walks: times.length,
    pagesPerWalk: pages / Math.max(1, times.length),
    durationSeconds: total / 1000,
    latencyMs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), mean: total / times.length, max: sorted.at(-1) },
    errors: 0,
    timeouts: 0,
    non2xx: 0,
  };
}

parentPort.on('message', async (job) => {
  try {
    const result = job.kind === 'walk' ? await runWalk(job) : await runAutocannon(job);
    parentPort.postMessage({ ok: true, result });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err?.stack ?? err) });
  }
});
