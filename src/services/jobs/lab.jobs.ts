// The long work of labs, run by operations: creating a lab (its template's
// disk and first boot) and publishing it (a snapshot of the template, then a
// student VM per seat: copy-on-write disks on that snapshot), or scaling a
// published lab to a new number of seats. Steps are checkpointed, so a
// resumed operation goes on where it stopped.
import { LabforgeError } from '../../errors.js';
import { type ChunkStore, MANIFEST_FORMAT } from '../../imagestore/chunk-store.js';
import type { OperationContext, OperationHandler } from '../../operations/worker.js';
import type { LabRecord, LabRepository } from '../../repositories/lab.repository.js';
import type { CaptureService } from '../capture.service.js';
import type { GalleryService } from '../gallery.service.js';
import { LAB_CREATE, LAB_PUBLISH, type LabService } from '../lab.service.js';
import type { LabUserService } from '../lab-user.service.js';
import type { VmService } from '../vm.service.js';
import { labVmHostName } from '../vm-rules.js';

type PublishInput = { labKey: string; mode: 'publish' | 'scale' };
type LabJobInput = { labKey: string; templateKey?: string | null; mode?: 'publish' | 'scale' };

export class LabJobs {
  constructor(
    private readonly labs: LabService,
    private readonly labRecords: LabRepository,
    private readonly labUsers: LabUserService,
    private readonly vms: VmService,
    private readonly capture: CaptureService,
    private readonly galleries: GalleryService,
    private readonly imageStores: Map<string, ChunkStore>,
  ) {}

  private store(region: string): ChunkStore {
    const s = this.imageStores.get(region);
    if (!s) throw new LabforgeError(500, 'RegionNotConfigured', `Region '${region}' has no image store configured on this server.`);
    return s;
  }

  /** The template's current disk as a manifest in the lab's region: what student VMs are built on. */
  private async snapshotTemplate(lab: LabRecord, ctx: OperationContext<{ labKey: string }>): Promise<string> {
    const [template] = await this.vms.labVms(lab.key, { type: 'Template' });
    if (!template) return lab.versionKey;
    const store = this.store(lab.location);
    await ctx.progress(5, 'Saving the template disk (only what changed since the image)');
    const { disk } = await this.capture.disk(template.key, store, 'os');
    const name = `lab-${lab.key}-${Date.now().toString(36)}`;
    await store.putManifest(name, { format: MANIFEST_FORMAT, disks: [disk] });
    return name;
  }

  /** Creates student VMs for these seat numbers on the published image: disks and VM records, not booted. */
  private async addSeats(lab: LabRecord, image: string, indices: number[], ctx: OperationContext<{ labKey: string }>, base: number): Promise<void> {
    const profile = lab.vmProfile;
    const gen = lab.sourceImageKey ? (await this.galleries.imageByKey(lab.sourceImageKey))?.hyperVGeneration : undefined;
    const seats = [];
    for (const i of indices) {
      seats.push(
        await this.vms.newLabVm({
          lab,
          vmName: String(i),
          vmType: 'User',
          versionKey: image,
          exactVersion: profile.exactVersion,
          imageReference: profile.imageReference.id,
          osType: profile.osType,
          osState: profile.osState,
          hyperVGeneration: gen ?? 'V1',
          size: profile.sku.name,
          computerName: labVmHostName(lab.name, String(i), profile.osType === 'Windows'),
          admin: profile.adminUser ? { username: profile.adminUser.username, passwordHash: lab.adminPasswordHash } : null,
          owner: lab.createdBy,
          seedLater: true,
        }),
      );
    }
    await this.vms.insertLabVms(this.labRecords.db, { tokenId: 'system', subject: lab.createdBy, role: 'creator' }, seats);
    let done = 0;
    const queue = [...seats];
    const worker = async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        await this.vms.provisionDisk(s.key);
        await this.vms.markCreated(s.key);
        done++;
        if (done % 10 === 0) await ctx.progress(base + Math.floor(((95 - base) * done) / seats.length), `Created ${done} of ${seats.length} student VMs`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, seats.length) }, worker));
  }

  /** Deletes student VMs: their files first, then their records, so a crash in between leaves records to delete again, never orphan files. */
  private async dropSeats(keys: string[]): Promise<void> {
    if (!keys.length) return;
    await this.vms.removeFiles(keys);
    await this.vms.deleteRecords(this.labRecords.db, keys);
  }

  /** Seats a crash left half-made (recorded, disk not finished): their disks are made now, so every seat ends usable. */
  private async repairSeats(lab: LabRecord): Promise<number> {
    const unfinished = (await this.vms.labVms(lab.key, { type: 'User' })).filter((v) => v.provisioningState !== 'Succeeded');
    for (const v of unfinished) {
      await this.vms.provisionDisk(v.key);
      await this.vms.markCreated(v.key);
    }
    return unfinished.length;
  }

  private async runPublish(ctx: OperationContext<PublishInput>): Promise<void> {
    const lab = await this.labs.load(ctx.input.labKey);
    const profile = lab.vmProfile;
    const seatNumber = (name: string) => Number(name.split('/')[2]);
    if (ctx.input.mode === 'scale' && lab.publishedImage) await this.repairSeats(lab);
    const seats = await this.vms.labVms(lab.key, { type: 'User' });
    if (ctx.input.mode === 'scale' && lab.publishedImage) {
      const indices = seats.map((s) => seatNumber(s.name)).sort((a, b) => a - b);
      if (indices.length > profile.sku.capacity) {
        // Fewer seats: the highest-numbered VMs go.
        await this.dropSeats(seats.filter((s) => seatNumber(s.name) >= profile.sku.capacity).map((s) => s.key));
      } else {
        const add: number[] = [];
        for (let i = 0; add.length < profile.sku.capacity - indices.length; i++) if (!indices.includes(i)) add.push(i);
        await this.addSeats(lab, lab.publishedImage, add, ctx, 10);
      }
    } else {
      let image = lab.publishedImage;
      await ctx.step('image', async () => {
        image = await this.snapshotTemplate(lab, ctx);
        ctx.checkpoint.image = image;
      });
      image = (ctx.checkpoint.image as string | undefined) ?? image;
      await ctx.step('seats', async () => {
        // Re-publishing replaces every student VM: what students changed is lost (as in Azure).
        await this.dropSeats((await this.vms.labVms(lab.key, { type: 'User' })).map((s) => s.key));
        await this.addSeats(
          lab,
          image as string,
          Array.from({ length: profile.sku.capacity }, (_, i) => i),
          ctx,
          30,
        );
      });
      const previous = lab.publishedImage;
      await this.labRecords.update(this.labRecords.db, lab.key, { publishedImage: image });
      if (previous !== image) await this.labs.dropSnapshot(lab, previous);
    }
    await this.labUsers.assignSeats(lab);
    await this.vms.collectBases();
    // What a crash of another process or request left behind (older ones only: creations in flight are younger).
    await this.vms.removeOrphans(10 * 60_000);
    const count = (await this.vms.labVms(lab.key, { type: 'User' })).length;
    await ctx.complete(`Published: ${count} student VM(s)`, async (tx) => {
      await this.labRecords.update(tx, lab.key, { state: 'Published' }, { etag: true });
    });
  }

  /** After a publish that failed or was cancelled, the lab is Published again if it ever was, else a Draft. */
  private async restoreState(tx: Parameters<NonNullable<OperationHandler<LabJobInput>['onFailure']>>[1], labKey: string): Promise<void> {
    const lab = await this.labRecords.byKey(labKey, tx);
    await this.labRecords.update(tx, labKey, { state: lab?.publishedImage ? 'Published' : 'Draft' });
  }

  handlers(): OperationHandler<LabJobInput>[] {
    return [
      {
        kind: LAB_CREATE,
        run: async (ctx) => {
          const templateKey = ctx.input.templateKey;
          if (templateKey) {
            await ctx.step('template-disk', () => this.vms.provisionDisk(templateKey, (pct, msg) => ctx.progress(Math.floor(pct / 2), `Template VM: ${msg}`)));
            await ctx.step('template-start', async () => {
              await ctx.progress(60, 'Starting the template VM');
              await this.vms.startNow(templateKey);
            });
          }
          const status = templateKey ? await this.vms.driver.status(templateKey) : undefined;
          await ctx.complete('Lab created', async (tx) => {
            if (templateKey) await this.vms.settleCreated(tx, templateKey, status);
            await this.labRecords.update(tx, ctx.input.labKey, { provisioningState: 'Succeeded' }, { etag: true });
          });
        },
        onCancel: async (ctx, tx) => {
          if (ctx.input.templateKey) {
            await this.vms.deleteRecords(tx, [ctx.input.templateKey]);
            await this.vms.removeFiles([ctx.input.templateKey]).catch(() => undefined);
          }
          await this.labRecords.delete(tx, ctx.input.labKey);
        },
        onFailure: async (ctx, tx, error) => {
          if (ctx.input.templateKey) {
            await this.vms.removeFiles([ctx.input.templateKey]).catch(() => undefined);
            await this.vms.markFailed(tx, ctx.input.templateKey, error);
          }
          await this.labRecords.update(tx, ctx.input.labKey, { provisioningState: 'Failed' });
        },
      },
      {
        kind: LAB_PUBLISH,
        run: (ctx) => this.runPublish(ctx as OperationContext<PublishInput>),
        onCancel: (ctx, tx) => this.restoreState(tx, ctx.input.labKey),
        onFailure: (ctx, tx) => this.restoreState(tx, ctx.input.labKey),
      },
    ];
  }
}
