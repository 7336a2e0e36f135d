// The long work of image-store maintenance, run by operations: verifying each
// region's chunks (repairing bad or missing ones from another region) and
// collecting the chunks no manifest uses any more.
import type { ChunkStore } from '../../imagestore/chunk-store.js';
import { collectGarbage, verifyRegion } from '../../imagestore/maintenance.js';
import type { OperationHandler } from '../../operations/worker.js';
import { STORE_GC, STORE_VERIFY, type StoreSettings } from '../store.service.js';

export function storeJobs(stores: Map<string, ChunkStore>, settings: StoreSettings): OperationHandler<{ regions: string[] }>[] {
  const others = (name: string) => [...stores.values()].filter((s) => s.region !== name);
  return [
    {
      kind: STORE_VERIFY,
      run: async (ctx) => {
        const reports = [];
        for (const [i, name] of ctx.input.regions.entries()) {
          const report = await verifyRegion(stores.get(name) as ChunkStore, others(name), { signal: ctx.signal });
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
          reports.push(await collectGarbage(stores.get(name) as ChunkStore, settings.gcGraceMs, ctx.signal));
          ctx.checkpoint.result = reports;
          await ctx.progress(((i + 1) * 100) / ctx.input.regions.length, `Collected ${name}`);
        }
        await ctx.complete('Garbage collected');
      },
    },
  ];
}
