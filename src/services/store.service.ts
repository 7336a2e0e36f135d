// Image-store maintenance: starting its operations (verify and repair, garbage
// collection; the work is in jobs/store.jobs.ts) and the usage and cost
// report, per region and per gallery.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { ChunkStore } from '../imagestore/chunk-store.js';
import { regionUsage, requireRegionStore } from '../imagestore/maintenance.js';
import type { Operation, OperationStore } from '../operations/operation.store.js';
import type { ImageVersionRepository } from '../repositories/image-version.repository.js';
import type { Principal } from './common.js';

export const STORE_VERIFY = 'store.verify';
export const STORE_GC = 'store.gc';

export interface StoreSettings {
  pricePerGiBMonth: number;
  gcGraceMs: number;
}

export interface UsageRow {
  region: string;
  gallery: string | null;
  image: string | null;
  version: string | null;
  logicalBytes: number;
  storedBytes: number;
  uniqueBytes: number;
  replicas: number;
  monthlyCost: number;
}

export interface UsageReport {
  pricePerGiBMonth: number;
  regions: Array<{ region: string; totalStoredBytes: number; monthlyCost: number }>;
  versions: UsageRow[];
}

const GiB = 2 ** 30;

export class StoreService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly versionRecords: ImageVersionRepository,
    private readonly stores: Map<string, ChunkStore>,
    private readonly operations: OperationStore,
    readonly settings: StoreSettings,
  ) {}

  private regionsFor(region?: string): string[] {
    return region ? [requireRegionStore(this.stores, region).region] : [...this.stores.keys()];
  }

  async start(kind: typeof STORE_VERIFY | typeof STORE_GC, p: Principal, sub: string, region?: string): Promise<Operation> {
    const regions = this.regionsFor(region);
    const op = await this.operations.enqueue(this.db, {
      kind,
      subscriptionId: sub.toLowerCase(),
      location: region ?? regions[0] ?? '',
      targetId: `/providers/Labforge.Core/imageStores/${region ?? 'all'}`,
      input: { regions },
      createdBy: p.subject,
    });
    this.operations.notify();
    return op;
  }

  /** Per version and region: logical size, bytes stored, bytes only it uses, replicas and monthly cost. */
  async usage(
    region?: string,
  ): Promise<{ pricePerGiBMonth: number; regions: Array<{ region: string; totalStoredBytes: number; monthlyCost: number }>; versions: UsageRow[] }> {
    const byKey = await this.versionRecords.catalogue();
    const price = this.settings.pricePerGiBMonth;
    const regions: Array<{ region: string; totalStoredBytes: number; monthlyCost: number }> = [];
    const versions: UsageRow[] = [];
    for (const name of this.regionsFor(region)) {
      const u = await regionUsage(this.stores.get(name) as ChunkStore);
      let cost = 0;
      for (const v of u.versions) {
        const row = byKey.get(v.name);
        const targets = row ? row.targetRegions : [];
        const replicas = targets.find((t) => t.name === name)?.regionalReplicaCount ?? 1;
        const monthlyCost = (v.storedBytes / GiB) * replicas * price;
        cost += monthlyCost;
        versions.push({
          region: name,
          gallery: row?.gallery ?? null,
          image: row?.image ?? null,
          version: row?.version ?? null,
          logicalBytes: v.logicalBytes,
          storedBytes: v.storedBytes,
          uniqueBytes: v.uniqueBytes,
          replicas,
          monthlyCost: Math.round(monthlyCost * 10000) / 10000,
        });
      }
      regions.push({ region: name, totalStoredBytes: u.totalStoredBytes, monthlyCost: Math.round(cost * 10000) / 10000 });
    }
    return { pricePerGiBMonth: price, regions, versions };
  }
}
