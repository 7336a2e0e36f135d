// Store maintenance: verify (re-hash every chunk, quarantine corrupt ones,
// repair from another region), garbage collection (mark from manifests,
// sweep unreferenced chunks older than a grace period), and usage figures.
import { LabforgeError } from '../errors.js';
import { type ChunkStore, chunkKey, type Manifest, manifestDigests } from './chunk-store.js';
import { sharedHashPool } from './hash-pool.js';

export interface VerifyReport {
  region: string;
  chunksChecked: number;
  bytesChecked: number;
  corrupt: string[];
  missing: string[];
  repaired: string[];
  unrepairable: string[];
}

/** Every manifest in a region, by name. */
export async function regionManifests(store: ChunkStore): Promise<Map<string, Manifest>> {
  const out = new Map<string, Manifest>();
  for await (const b of store.driver.list('manifests/')) {
    const name = b.key.slice('manifests/'.length).replace(/\.json$/, '');
    const m = await store.getManifest(name);
    if (m) out.set(name, m);
  }
  return out;
}

async function repairFrom(digest: string, store: ChunkStore, others: ChunkStore[]): Promise<boolean> {
  for (const other of others) {
    try {
      const data = await other.getChunk(digest);
      await store.putVerified(digest, data);
      return true;
    } catch {
      // Not there or corrupt there too: try the next region.
    }
  }
  return false;
}

export async function verifyRegion(
  store: ChunkStore,
  others: ChunkStore[],
  opts: { signal?: AbortSignal; onProgress?: (r: VerifyReport) => void } = {},
): Promise<VerifyReport> {
  const report: VerifyReport = { region: store.region, chunksChecked: 0, bytesChecked: 0, corrupt: [], missing: [], repaired: [], unrepairable: [] };
  const referenced = new Set<string>();
  for (const m of (await regionManifests(store)).values()) for (const d of manifestDigests(m)) referenced.add(d);
  const present = new Set<string>();
  const listed: string[] = [];
  for await (const b of store.driver.list('chunks/')) listed.push(b.key);
  // Reads stay several chunks ahead while worker threads hash.
  const pool = sharedHashPool();
  let next = 0;
  const worker = async () => {
    while (next < listed.length) {
      opts.signal?.throwIfAborted();
      const key = listed[next++] as string;
      const digest = key.slice(key.lastIndexOf('/') + 1);
      const data = await store.driver.get(key);
      if (!data) continue;
      report.chunksChecked++;
      report.bytesChecked += data.length;
      if ((await pool.hash(data)) === digest) {
        present.add(digest);
      } else {
        report.corrupt.push(digest);
        await store.driver.move(key, `quarantine/${digest}.bad`);
      }
      if (report.chunksChecked % 64 === 0) opts.onProgress?.(report);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  for (const digest of referenced) {
    if (present.has(digest)) continue;
    if (!report.corrupt.includes(digest)) report.missing.push(digest);
    if (await repairFrom(digest, store, others)) report.repaired.push(digest);
    else report.unrepairable.push(digest);
  }
  // Repaired chunks keep their names through a crash from here on.
  if (report.repaired.length) await store.flush();
  return report;
}

export interface GcReport {
  region: string;
  chunksKept: number;
  chunksRemoved: number;
  bytesFreed: number;
  /** Unreferenced chunks spared because they are younger than the grace period (an import may be about to use them). */
  chunksInGrace: number;
}

export async function collectGarbage(store: ChunkStore, graceMs: number, signal?: AbortSignal): Promise<GcReport> {
  const report: GcReport = { region: store.region, chunksKept: 0, chunksRemoved: 0, bytesFreed: 0, chunksInGrace: 0 };
  const live = new Set<string>();
  for (const m of (await regionManifests(store)).values()) for (const d of manifestDigests(m)) live.add(d);
  const cutoff = Date.now() - graceMs;
  for await (const b of store.driver.list('chunks/')) {
    signal?.throwIfAborted();
    const digest = b.key.slice(b.key.lastIndexOf('/') + 1);
    if (live.has(digest)) report.chunksKept++;
    else if ((b.modifiedMs ?? 0) > cutoff) report.chunksInGrace++;
    else if (await store.driver.delete(chunkKey(digest))) {
      report.chunksRemoved++;
      report.bytesFreed += b.size;
    }
  }
  return report;
}

export interface VersionUsage {
  /** Manifest name (the version's key). */
  name: string;
  logicalBytes: number;
  /** Bytes of the distinct chunks the version uses. */
  storedBytes: number;
  /** Bytes of chunks no other version in the region uses: what deleting it would free. */
  uniqueBytes: number;
}

/** Per-version usage in one region, from its manifests and chunk sizes. */
export async function regionUsage(store: ChunkStore): Promise<{ region: string; totalStoredBytes: number; versions: VersionUsage[] }> {
  const manifests = await regionManifests(store);
  const users = new Map<string, number>();
  for (const m of manifests.values()) for (const d of manifestDigests(m)) users.set(d, (users.get(d) ?? 0) + 1);
  const sizes = new Map<string, number>();
  for await (const b of store.driver.list('chunks/')) sizes.set(b.key.slice(b.key.lastIndexOf('/') + 1), b.size);
  const versions: VersionUsage[] = [];
  for (const [name, m] of manifests) {
    let storedBytes = 0;
    let uniqueBytes = 0;
    for (const d of manifestDigests(m)) {
      const size = sizes.get(d);
      if (size === undefined) continue;
      storedBytes += size;
      if (users.get(d) === 1) uniqueBytes += size;
    }
    versions.push({ name, logicalBytes: m.disks.reduce((n, d) => n + d.virtualSize, 0), storedBytes, uniqueBytes });
  }
  let totalStoredBytes = 0;
  for (const s of sizes.values()) totalStoredBytes += s;
  return { region: store.region, totalStoredBytes, versions };
}

export function requireRegionStore(stores: Map<string, ChunkStore>, region: string): ChunkStore {
  const s = stores.get(region);
  if (!s)
    throw new LabforgeError(400, 'InvalidParameter', `'${region}' is not a region of this server. Use one of: ${[...stores.keys()].join(', ')}.`, 'region');
  return s;
}
