// Image-store maintenance as operations (verify and repair, garbage
// collection) and the usage and cost report, per region and per gallery.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { ChunkStore } from '../imagestore/chunk-store.js';
import { collectGarbage, regionUsage, requireRegionStore, verifyRegion } from '../imagestore/maintenance.js';
import type { Operation, OperationStore } from '../operations/operation.store.js';
import type { OperationHandler } from '../operations/worker.js';
import type { Principal } from './common.js';
import type { TargetRegion } from './image-version.service.js';

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
    const rows = await this.db
      .selectFrom('gallery_image_versions as v')
      .innerJoin('gallery_images as i', 'i.id', 'v.image_id')
      .innerJoin('galleries as g', 'g.id', 'i.gallery_id')
      .select(['v.id as id', 'v.name as version', 'i.name as image', 'g.name as gallery', 'v.target_regions as targets'])
      .execute();
    const byKey = new Map(rows.map((r) => [r.id, r]));
    const price = this.settings.pricePerGiBMonth;
    const regions: Array<{ region: string; totalStoredBytes: number; monthlyCost: number }> = [];
    const versions: UsageRow[] = [];
    for (const name of this.regionsFor(region)) {
      const u = await regionUsage(this.stores.get(name) as ChunkStore);
      let cost = 0;
      for (const v of u.versions) {
        const row = byKey.get(v.name);
        const targets = row ? (JSON.parse(row.targets) as TargetRegion[]) : [];
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

  handlers(): OperationHandler<{ regions: string[] }>[] {
    const others = (name: string) => [...this.stores.values()].filter((s) => s.region !== name);
    return [
      {
        kind: STORE_VERIFY,
        run: async (ctx) => {
          const reports = [];
          for (const [i, name] of ctx.input.regions.entries()) {
            const report = await verifyRegion(this.stores.get(name) as ChunkStore, others(name), { signal: ctx.signal });
            reports.push(report);
            ctx.checkpoint.result = reports;
            const bad = report.corrupt.length + report.missing.length;
            await ctx.progress(
              ((i + 1) * 100) / ctx.input.regions.length,
              `${name}: ${report.chunksChecked} chunks checked, ${bad} bad, ${report.repaired.length} repaired`,
            );
          }
          const unrepairable = reports.reduce((n, r) => n + r.unrepairable.length, 0);
          await ctx.complete(unrepairable ? `Verified; ${unrepairable} chunk(s) could not be repaired from any region` : 'Verified; the store is sound');
        },
      },
      {
        kind: STORE_GC,
        run: async (ctx) => {
          const reports = [];
          for (const [i, name] of ctx.input.regions.entries()) {
            reports.push(await collectGarbage(this.stores.get(name) as ChunkStore, this.settings.gcGraceMs, ctx.signal));
            ctx.checkpoint.result = reports;
            await ctx.progress(((i + 1) * 100) / ctx.input.regions.length, `Collected ${name}`);
          }
          await ctx.complete('Garbage collected');
        },
      },
    ];
  }
}
