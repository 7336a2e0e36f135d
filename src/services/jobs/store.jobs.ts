// The long work of image-store maintenance, run by operations: verifying each
// region's chunks (repairing bad or missing ones from another region) and
// collecting the chunks no manifest uses any more.
import type { ChunkStore } from '../../imagestore/chunk-store.js';
import { ImageStoreError } from '../../imagestore/errors.js';
import { collectGarbage, verifyRegion } from '../../imagestore/maintenance.js';
import type { OperationHandler } from '../../operations/worker.js';
import type { ImageVersionRepository } from '../../repositories/image-version.repository.js';
import { STORE_GC, STORE_VERIFY, type StoreSettings } from '../store.service.js';

export function storeJobs(
  stores: Map<string, ChunkStore>,
  settings: StoreSettings,
  versions: ImageVersionRepository,
): OperationHandler<{ regions: string[] }>[] {
  const others = (name: string) => [...stores.values()].filter((s) => s.region !== name);
  /** Marks a version's replica in `region` Failed with the reason; its name for the message, or undefined (not a version). */
  const markDamaged = async (region: string, manifest: string, chunks: number): Promise<string | undefined> => {
    const v = await versions.byKey(manifest);
    if (!v) return manifest.startsWith('lab-') ? `lab snapshot ${manifest}` : undefined;
    const replication = { ...v.replication };
    replication[region] = {
      state: 'Failed',
      progress: replication[region]?.progress ?? 100,
      details: `Damaged: ${chunks} chunk(s) of this region's copy could not be repaired from any region (store verify, ${new Date().toISOString().slice(0, 16)} UTC). No VM is made from it; re-create the version from its source disk.`,
    };
    await versions.update(versions.db, v.key, { replication });
    return `${v.imageName} ${v.name}`;
  };
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
        const unrepairable = new Set(reports.flatMap((r) => r.unrepairable)).size;
        if (!unrepairable) {
          await ctx.complete('Verified; the store is sound');
          return;
        }
        // Content no region can restore: the replicas that use it are marked unusable (no VM is built from them),
        // and the operation fails, so scripts and the CLI see it.
        const damaged: string[] = [];
        for (const r of reports) {
          for (const name of r.damagedManifests) {
            const label = await markDamaged(r.region, name, r.unrepairable.length);
            if (label) damaged.push(`${label} in ${r.region}`);
          }
        }
        ctx.checkpoint.result = reports;
        await ctx.progress(100, `${unrepairable} chunk(s) could not be repaired from any region`);
        throw new ImageStoreError(
          'StoreDamaged',
          `${unrepairable} chunk(s) are damaged in every region that had them and could not be repaired. ${
            damaged.length ? `Marked unusable: ${damaged.slice(0, 10).join(', ')}${damaged.length > 10 ? ` and ${damaged.length - 10} more` : ''}. ` : ''
          }Re-create those versions from their original disks (or delete them); the report lists the chunks.`,
        );
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
