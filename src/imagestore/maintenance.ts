// Store maintenance: verify (re-hash every chunk, quarantine corrupt ones,
// repair from another region), garbage collection (mark from manifests,
// sweep unreferenced chunks older than a grace period, rewriting packs that
// hold some), and usage figures.

import { type ChunkBatch, type ChunkLocation, type ChunkStore, chunkKey, type Manifest, manifestDigests } from './chunk-store.js';
import { ImageStoreError } from './errors.js';
import { sharedHashPool } from './hash-pool.js';
import type { PackEntry } from './packs.js';

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

export interface VerifyReport {
  region: string;
  chunksChecked: number;
  bytesChecked: number;
  corrupt: string[];
  missing: string[];
  repaired: string[];
  unrepairable: string[];
  /** Packs whose index could not be read: set aside in quarantine/, their chunks repaired like missing ones. */
  packsUnreadable: string[];
  /** Manifests (versions, lab snapshots) in this region that use an unrepairable chunk: their content is damaged. */
  damagedManifests: string[];
}

export async function verifyRegion(
  store: ChunkStore,
  others: ChunkStore[],
  opts: { signal?: AbortSignal; onProgress?: (r: VerifyReport) => void } = {},
): Promise<VerifyReport> {
  const report: VerifyReport = {
    region: store.region,
    chunksChecked: 0,
    bytesChecked: 0,
    corrupt: [],
    missing: [],
    repaired: [],
    unrepairable: [],
    packsUnreadable: [],
    damagedManifests: [],
  };
  const referenced = new Set<string>();
  const manifests = await regionManifests(store);
  for (const m of manifests.values()) for (const d of manifestDigests(m)) referenced.add(d);
  // Every pack's index is read again (damage since the store started), and what another process added is checked too.
  await store.refresh(true);
  for (const [key] of await store.unreadablePacks()) {
    report.packsUnreadable.push(key);
    await store.driver.move(key, `quarantine/${key.slice(key.lastIndexOf('/') + 1)}.bad`);
  }
  if (report.packsUnreadable.length) await store.refresh();
  const present = new Set<string>();
  const listed = [...(await store.locations()).values()];
  const bad: ChunkLocation[] = [];
  // Reads stay several chunks ahead while worker threads hash.
  const pool = sharedHashPool();
  let next = 0;
  const worker = async () => {
    while (next < listed.length) {
      opts.signal?.throwIfAborted();
      const loc = listed[next++] as ChunkLocation;
      const data = await store.readLocation(loc);
      if (!data) continue;
      report.chunksChecked++;
      report.bytesChecked += data.length;
      if (data.length === loc.length && (await pool.hash(data)) === loc.digest) present.add(loc.digest);
      else bad.push(loc);
      if (report.chunksChecked % 64 === 0) opts.onProgress?.(report);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await quarantine(store, bad);
  report.corrupt.push(...bad.map((l) => l.digest));
  const repairs = store.batch();
  try {
    for (const digest of referenced) {
      if (present.has(digest)) continue;
      if (!report.corrupt.includes(digest)) report.missing.push(digest);
      if (await repairFrom(digest, repairs, others)) report.repaired.push(digest);
      else report.unrepairable.push(digest);
    }
  } catch (err) {
    await repairs.abort();
    throw err;
  }
  // Repaired chunks are durable under their names from here on.
  await repairs.finish();
  const lost = new Set(report.unrepairable);
  for (const [name, m] of manifests) if (manifestDigests(m).some((d) => lost.has(d))) report.damagedManifests.push(name);
  return report;
}

/** Sets corrupt chunks aside in quarantine/ and takes them out of their packs (the rest of each pack is rewritten). */
async function quarantine(store: ChunkStore, bad: ChunkLocation[]): Promise<void> {
  const byPack = new Map<string, Set<string>>();
  for (const loc of bad) {
    const data = await store.readLocation(loc);
    if (!loc.pack) {
      await store.driver.move(chunkKey(loc.digest), `quarantine/${loc.digest}.bad`);
      await store.removeBlob({ digest: loc.digest });
      continue;
    }
    if (data) await store.driver.put(`quarantine/${loc.digest}.bad`, data, { overwrite: true });
    byPack.set(loc.pack, (byPack.get(loc.pack) ?? new Set()).add(loc.digest));
  }
  const packs = new Map((await store.packList()).map((p) => [p.key, p]));
  for (const [key, digests] of byPack) {
    const info = packs.get(key);
    if (info)
      await store.repack(
        key,
        info.entries.filter((e) => !digests.has(e.digest)),
      );
  }
}

async function repairFrom(digest: string, repairs: ChunkBatch, others: ChunkStore[]): Promise<boolean> {
  for (const other of others) {
    try {
      const data = await other.getChunk(digest);
      await repairs.putVerified(digest, data);
      return true;
    } catch {
      // Not there or corrupt there too: try the next region.
    }
  }
  return false;
}

export interface GcReport {
  region: string;
  chunksKept: number;
  chunksRemoved: number;
  bytesFreed: number;
  /** Unreferenced chunks spared because they are younger than the grace period (an import may be about to use them). */
  chunksInGrace: number;
  /** Packs rewritten without their unreferenced chunks. */
  packsRewritten: number;
}

/**
 * Frees chunks no manifest refers to once they are older than the grace period (and no write found them
 * in use within it). A pack whose chunks are all unreferenced is deleted; one with some still in use is
 * rewritten with only those.
 */
export async function collectGarbage(store: ChunkStore, graceMs: number, signal?: AbortSignal): Promise<GcReport> {
  const report: GcReport = { region: store.region, chunksKept: 0, chunksRemoved: 0, bytesFreed: 0, chunksInGrace: 0, packsRewritten: 0 };
  const live = new Set<string>();
  for (const m of (await regionManifests(store)).values()) for (const d of manifestDigests(m)) live.add(d);
  const cutoff = store.now() - graceMs;
  const spared = (digest: string) => store.usedSince(digest, cutoff);
  const index = await store.locations();
  // Chunk files (stores written before packs).
  for await (const b of store.driver.list('chunks/')) {
    signal?.throwIfAborted();
    const digest = b.key.slice(b.key.lastIndexOf('/') + 1);
    if (live.has(digest)) report.chunksKept++;
    else if ((b.modifiedMs ?? 0) > cutoff || spared(digest)) report.chunksInGrace++;
    else {
      // Decided and forgotten in one step: a write that finds the chunk from now on stores it again.
      store.forget([digest]);
      if (await store.removeBlob({ digest })) {
        report.chunksRemoved++;
        report.bytesFreed += b.size;
      }
    }
  }
  for (const pack of await store.packList()) {
    signal?.throwIfAborted();
    const keep: PackEntry[] = [];
    const drop: PackEntry[] = [];
    for (const e of pack.entries) {
      // A second copy of a chunk located elsewhere is dropped too.
      const here = index.get(e.digest)?.pack === pack.key;
      if (here && (live.has(e.digest) || spared(e.digest))) keep.push(e);
      else drop.push(e);
    }
    // Unreferenced chunks a write found stored within the grace period stay, and count as in grace.
    const kept = keep.filter((e) => live.has(e.digest)).length;
    report.chunksKept += kept;
    if (!drop.length || pack.modifiedMs > cutoff) {
      report.chunksInGrace += keep.length - kept + drop.length;
      continue;
    }
    report.chunksInGrace += keep.length - kept;
    // Decided and forgotten in one step (no await between): a write that would have counted on a dropped
    // chunk stores it again, and one that found it before this was seen in `spared`.
    store.forget(
      drop.map((e) => e.digest),
      pack.key,
    );
    if (keep.length) {
      await store.repack(pack.key, keep);
      report.packsRewritten++;
    } else await store.removeBlob({ pack: pack.key });
    report.chunksRemoved += drop.length;
    for (const e of drop) report.bytesFreed += e.length;
  }
  store.forgetUsesBefore(cutoff);
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
  const sizes = await store.storedChunks();
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
  if (!s) throw new ImageStoreError('InvalidParameter', `'${region}' is not a region of this server. Use one of: ${[...stores.keys()].join(', ')}.`, 'region');
  return s;
}
