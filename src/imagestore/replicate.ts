// Replication of a version between two regions' chunk stores: send only the
// chunks the target lacks, verify each on arrival, write the manifest last.
// Re-running after a crash skips what already arrived.
import { chunkFault } from '../faults.js';
import { type ChunkStore, manifestDigests } from './chunk-store.js';
import { ImageStoreError } from './errors.js';

export interface ReplicationProgress {
  chunksDone: number;
  chunksTotal: number;
  bytesSent: number;
}

export interface ReplicationResult extends ReplicationProgress {
  /** Chunks the target already had (from other versions, or from an interrupted earlier attempt). */
  chunksSkipped: number;
  chunksSent: number;
}

export async function replicateVersion(
  source: ChunkStore,
  target: ChunkStore,
  name: string,
  opts: { signal?: AbortSignal; onProgress?: (p: ReplicationProgress) => void; concurrency?: number } = {},
): Promise<ReplicationResult> {
  const manifest = await source.getManifest(name);
  if (!manifest) {
    throw new ImageStoreError('ReplicaSourceMissing', `Region '${source.region}' has no complete copy of this version to replicate from.`);
  }
  const digests = manifestDigests(manifest);
  const result: ReplicationResult = { chunksDone: 0, chunksTotal: digests.length, bytesSent: 0, chunksSkipped: 0, chunksSent: 0 };
  if (await target.hasManifest(name)) {
    result.chunksDone = digests.length;
    result.chunksSkipped = digests.length;
    return result;
  }
  let next = 0;
  let failure: { err: unknown } | undefined;
  const batch = target.batch();
  const worker = async () => {
    while (next < digests.length && !failure) {
      try {
        opts.signal?.throwIfAborted();
        const digest = digests[next++] as string;
        if (await target.hasChunk(digest)) {
          target.markUsed(digest);
          result.chunksSkipped++;
        } else {
          const data = await source.getChunk(digest);
          await batch.putVerified(digest, data);
          result.bytesSent += data.length;
          result.chunksSent++;
          await chunkFault();
        }
        result.chunksDone++;
        opts.onProgress?.(result);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker));
  if (!failure && opts.signal?.aborted) failure = { err: opts.signal.reason };
  if (failure) {
    // Keep what arrived (every chunk was checked): a replication started again does not send it twice.
    await batch.finish().catch(() => batch.abort());
    throw failure.err;
  }
  await batch.finish();
  // The manifest is the commit point: only now is the replica usable.
  await target.putManifest(name, manifest);
  return result;
}
