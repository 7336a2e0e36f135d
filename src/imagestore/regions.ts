// One chunk store per configured region, each on the blob driver the region names.
import type { RegionConfig } from '../config/config.js';
import { ChunkStore, type ChunkStoreOptions } from './chunk-store.js';
import { createBlobDriver } from './drivers/index.js';

export function openRegionStores(regions: RegionConfig[], opts: ChunkStoreOptions = {}): Map<string, ChunkStore> {
  return new Map(regions.map((r) => [r.name, new ChunkStore(createBlobDriver(r.name, r.imageStore), r.name, opts)]));
}
