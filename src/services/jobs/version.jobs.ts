// The long work of image versions, run by operations: a new version's content
// is written in its home region (imported uploads, the disks of another
// version, a VM's captured disk, or empty disks), then replicated to each
// target region (only the chunks a region lacks). A version whose content
// never finished is removed when cancelled and marked Failed when it fails;
// its uploads are consumed either way.
import { LabforgeError } from '../../errors.js';
import { type ChunkStore, DEFAULT_BLOCK_SIZE, type DiskManifest, MANIFEST_FORMAT, type Manifest } from '../../imagestore/chunk-store.js';
import { importDisk } from '../../imagestore/import.js';
import { replicateVersion } from '../../imagestore/replicate.js';
import type { OperationContext, OperationHandler } from '../../operations/worker.js';
import type { DiskSource, ImageVersion, ImageVersionRepository, RegionReplication, VersionStorage } from '../../repositories/image-version.repository.js';
import type { CaptureService } from '../capture.service.js';
import { type ImageVersionService, VERSION_CREATE, VERSION_REPLICATE } from '../image-version.service.js';
import type { UploadService } from '../upload.service.js';

type VersionJobInput = { versionKey: string };
type Ctx = OperationContext<VersionJobInput>;
type Tx = Parameters<NonNullable<OperationHandler<VersionJobInput>['onFailure']>>[1];

const VERSION_ARM_ID =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/images\/([^/]+)\/versions\/([^/]+)$/i;

export class VersionJobs {
  constructor(
    private readonly versions: ImageVersionService,
    private readonly records: ImageVersionRepository,
    private readonly capture: CaptureService,
    private readonly uploads: UploadService,
    private readonly imageStores: Map<string, ChunkStore>,
    private readonly importSettings: { maxDiskBytes: number; tmpDir: string },
  ) {}

  private async load(versionKey: string, db = this.records.db): Promise<ImageVersion> {
    const v = await this.records.byKey(versionKey, db);
    if (!v) throw new LabforgeError(404, 'ResourceNotFound', 'The image version this operation works on no longer exists.');
    return v;
  }

  private async setReplication(versionKey: string, region: string, r: RegionReplication): Promise<void> {
    const { replication } = await this.load(versionKey);
    replication[region] = r;
    await this.records.update(this.records.db, versionKey, { replication });
  }

  private regionStore(region: string): ChunkStore {
    const store = this.imageStores.get(region);
    if (!store) throw new LabforgeError(500, 'RegionNotConfigured', `Region '${region}' has no image store configured on this server.`);
    return store;
  }

  /** Writes the version's manifest in its home region: imported uploads, the disks of its source, or empty disks. */
  private async writeContent(version: ImageVersion, ctx: Ctx): Promise<void> {
    const home = this.regionStore(version.location);
    // A copy: the sizes and formats learnt while importing are written back.
    const storage = structuredClone(version.storage);
    let manifest: Manifest;
    if (storage.sourceId) {
      const [, sub, rg, g, i, v] = VERSION_ARM_ID.exec(storage.sourceId) as unknown as string[];
      const source = await this.versions.get(sub as string, rg as string, g as string, i as string, v as string);
      const found = await home.getManifest(source.key);
      if (!found) {
        throw new LabforgeError(
          409,
          'SourceNotReplicated',
          `The source version ${source.name} has no completed replica in region '${version.location}'. Add '${version.location}' to its target regions, wait for replication, then retry.`,
        );
      }
      manifest = found;
    } else if (storage.osDisk.source.kind === 'vm') {
      manifest = await this.captureContent(version, storage, ctx);
    } else {
      const disks = [{ name: 'os', d: storage.osDisk }, ...storage.dataDisks.map((d) => ({ name: `data-${d.lun}`, d }))];
      const out: DiskManifest[] = [];
      for (const [index, { name, d }] of disks.entries()) {
        if (d.source.kind === 'upload' || d.source.kind === 'file') {
          const upload = d.source.kind === 'upload' ? await this.uploads.get(d.source.uploadId) : { complete: true, path: d.source.path };
          if (!upload?.complete)
            throw new LabforgeError(409, 'UploadMissing', `The upload for disk '${name}' is gone; upload the disk again and create the version anew.`);
          let last = 0;
          const imported = await importDisk(home, upload.path, {
            name,
            maxVirtualSize: this.importSettings.maxDiskBytes,
            tmpDir: this.importSettings.tmpDir,
            tmpName: `${version.key}-${name}`,
            signal: ctx.signal,
            onProgress: (f) => {
              if (Date.now() - last < 500) return;
              last = Date.now();
              void ctx.progress(Math.floor(((index + f) / disks.length) * 50), `Importing disk '${name}'`).catch(() => undefined);
            },
          });
          d.sizeGB = Math.ceil(imported.disk.virtualSize / 2 ** 30);
          if (d.source.kind === 'upload') d.source.format = imported.format;
          out.push(imported.disk);
        } else {
          out.push({ name, virtualSize: d.sizeGB * 2 ** 30, blockSize: DEFAULT_BLOCK_SIZE, blocks: [] });
        }
      }
      manifest = { format: MANIFEST_FORMAT, disks: out };
      await this.records.update(this.records.db, version.key, { storage });
    }
    await home.putManifest(version.key, manifest);
    await this.dropUploads(version);
  }

  /** Captures the source VM's disk in the VM's region, then brings the version's chunks to its home region. */
  private async captureContent(version: ImageVersion, storage: VersionStorage, ctx: Ctx): Promise<Manifest> {
    const src = storage.osDisk.source as Extract<DiskSource, { kind: 'vm' }>;
    const vmStore = this.regionStore(src.region);
    await ctx.progress(5, 'Capturing the VM disk (only the blocks it changed)');
    const { disk, stats } = await this.capture.disk(src.vmKey, vmStore, 'os');
    const manifest: Manifest = { format: MANIFEST_FORMAT, disks: [disk] };
    storage.osDisk.sizeGB = Math.ceil(disk.virtualSize / 2 ** 30);
    await this.records.update(this.records.db, version.key, { storage });
    ctx.checkpoint.result = { capture: stats };
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    await ctx.progress(
      40,
      `Captured ${stats.blocksChanged} changed block(s): ${stats.chunksCreated} new chunk(s), ${mib(stats.bytesCreated)} MiB stored, ${mib(stats.bytesRead)} MiB read`,
    );
    if (src.region !== version.location) {
      await vmStore.putManifest(version.key, manifest);
      await replicateVersion(vmStore, this.regionStore(version.location), version.key, { signal: ctx.signal });
      if (!version.targetRegions.some((t) => t.name === src.region)) await vmStore.deleteManifest(version.key);
    }
    return manifest;
  }

  /** Uploaded files are consumed by the import, whether it succeeded or was refused. */
  private async dropUploads(version: ImageVersion | undefined): Promise<void> {
    if (!version) return;
    const storage = version.storage;
    for (const d of [storage.osDisk, ...storage.dataDisks]) if (d.source.kind === 'upload') await this.uploads.delete(d.source.uploadId);
  }

  /** Copies the version to each target region that lacks it (only the missing chunks), reporting progress. */
  private async replicateAll(ctx: Ctx, base: number): Promise<void> {
    const { versionKey } = ctx.input;
    const version = await this.load(versionKey);
    const targets = version.targetRegions;
    const home = this.regionStore(version.location);
    let i = 0;
    for (const t of targets) {
      await ctx.step(`replicate:${t.name}`, async () => {
        await this.setReplication(versionKey, t.name, { state: 'Replicating', progress: 0 });
        let last = 0;
        const result = await replicateVersion(home, this.regionStore(t.name), versionKey, {
          signal: ctx.signal,
          onProgress: (p) => {
            if (Date.now() - last < 500 || p.chunksTotal === 0) return;
            last = Date.now();
            const pct = Math.floor((100 * p.chunksDone) / p.chunksTotal);
            void this.setReplication(versionKey, t.name, { state: 'Replicating', progress: pct }).catch(() => undefined);
          },
        });
        const sent = t.name === version.location ? 'source region' : `${result.chunksSent} of ${result.chunksTotal} chunks sent (${result.bytesSent} bytes)`;
        await this.setReplication(versionKey, t.name, { state: 'Completed', progress: 100, details: sent });
        i += 1;
        await ctx.progress(base + ((100 - base) * i) / targets.length, `Replicated to ${t.name} (${sent})`);
      });
    }
    // Regions dropped from the target list lose their replica (its chunks go at the next garbage collection).
    const { replication } = await this.load(versionKey);
    for (const region of Object.keys(replication)) {
      if (!targets.some((t) => t.name === region)) {
        await this.imageStores.get(region)?.deleteManifest(versionKey);
        delete replication[region];
      }
    }
    await this.records.update(this.records.db, versionKey, { replication });
  }

  private async markFailed(tx: Tx, versionKey: string, details: string): Promise<void> {
    const version = await this.records.byKey(versionKey, tx);
    if (!version) return;
    const replication = version.replication;
    for (const r of Object.values(replication)) if (r.state !== 'Completed') Object.assign(r, { state: 'Failed', details });
    await this.records.update(tx, versionKey, { provisioningState: 'Failed', replication });
  }

  handlers(): OperationHandler<VersionJobInput>[] {
    return [
      {
        kind: VERSION_CREATE,
        run: async (ctx) => {
          await ctx.step('content', async () => {
            const version = await this.load(ctx.input.versionKey);
            await this.writeContent(version, ctx);
            await ctx.progress(50, `Stored ${1 + version.storage.dataDisks.length} disk(s) in ${version.location}`);
          });
          await this.replicateAll(ctx, 50);
          await ctx.complete('Succeeded', async (tx) => {
            await this.records.update(tx, ctx.input.versionKey, { provisioningState: 'Succeeded' }, { etag: true });
          });
        },
        onCancel: async (ctx, tx) => {
          // A version whose content never finished must not remain: remove it.
          const version = await this.records.byKey(ctx.input.versionKey, tx);
          await this.records.delete(tx, ctx.input.versionKey);
          await this.versions.dropManifests(ctx.input.versionKey);
          await this.dropUploads(version);
        },
        onFailure: async (ctx, tx, error) => {
          await this.markFailed(tx, ctx.input.versionKey, error.message);
          // A refused or broken upload is not kept: nothing of it stays on the server.
          await this.dropUploads(await this.records.byKey(ctx.input.versionKey, tx));
        },
      },
      {
        kind: VERSION_REPLICATE,
        run: async (ctx) => {
          await this.replicateAll(ctx, 0);
          await ctx.complete('Succeeded', async (tx) => {
            await this.records.update(tx, ctx.input.versionKey, { provisioningState: 'Succeeded' }, { etag: true });
          });
        },
        onCancel: async (ctx, tx) => {
          const version = await this.records.byKey(ctx.input.versionKey, tx);
          if (!version) return;
          // Keep the regions that finished; drop the ones that did not.
          const replication = version.replication;
          const targets = version.targetRegions.filter((t) => replication[t.name]?.state === 'Completed');
          for (const k of Object.keys(replication)) if (!targets.some((t) => t.name === k)) delete replication[k];
          await this.records.update(tx, ctx.input.versionKey, { provisioningState: 'Succeeded', targetRegions: targets, replication });
        },
        onFailure: async (ctx, tx, error) => this.markFailed(tx, ctx.input.versionKey, error.message),
      },
    ];
  }
}
