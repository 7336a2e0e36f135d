// Image versions: immutable content of an image definition, its target
// regions and replication state, and the "latest" rule. Creating a version or
// changing its target regions runs as a durable operation (the work is in
// jobs/version.jobs.ts). The rows are read and written through
// ImageVersionRepository.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { conflict, invalidParameter, LabforgeError, notFound } from '../errors.js';
import type { ChunkStore } from '../imagestore/chunk-store.js';
import { EXPORT_FORMATS, type ExportStream, exportDisk } from '../imagestore/export.js';
import { versionArmId } from '../lib/arm-id.js';
import type { Operation, OperationStore } from '../operations/operation.store.js';
import type { GalleryImageRecord } from '../repositories/gallery.repository.js';
import type {
  DiskImage,
  ImageVersion,
  ImageVersionChange,
  ImageVersionRepository,
  RegionReplication,
  StorageAccountType,
  TargetRegion,
  VersionStorage,
} from '../repositories/image-version.repository.js';
import type { LabRepository } from '../repositories/lab.repository.js';
import type { VmRepository } from '../repositories/vm.repository.js';
import type { CaptureService } from './capture.service.js';
import { checkPreconditions, checkTags, type Preconditions, type Principal, type RegionCatalog } from './common.js';
import type { GalleryService } from './gallery.service.js';
import { UploadService } from './upload.service.js';

export type {
  DiskImage,
  DiskSource,
  ImageVersion,
  RegionReplication,
  ReplicationState,
  StorageAccountType,
  TargetRegion,
  VersionStorage,
} from '../repositories/image-version.repository.js';

export interface ImageVersionInput {
  location?: string;
  tags?: unknown;
  publishingProfile?: {
    targetRegions?: Array<{ name?: string; regionalReplicaCount?: number; storageAccountType?: string }>;
    replicaCount?: number;
    excludeFromLatest?: boolean;
    endOfLifeDate?: string | null;
    storageAccountType?: string;
  };
  storageProfile?: {
    source?: { id?: string; virtualMachineId?: string; uri?: string };
    osDiskImage?: { hostCaching?: string; source?: { id?: string; uri?: string; storageAccountId?: string } };
    dataDiskImages?: Array<{ lun?: number; hostCaching?: string; source?: { id?: string; uri?: string; storageAccountId?: string } }>;
  };
}

export const VERSION_CREATE = 'gallery.version.create';
export const VERSION_REPLICATE = 'gallery.version.replicate';
const MAX_INT32 = 2147483647;
const STORAGE_TYPES: readonly StorageAccountType[] = ['Standard_LRS', 'Standard_ZRS', 'Premium_LRS'];
const EMPTY_DISK = /^labforge:empty-disk\?sizeGB=([0-9]{1,5})$/;

/** Parses `MAJOR.MINOR.PATCH` (each a 32-bit integer) or explains the rule. */
export function parseVersionName(name: string): [number, number, number] {
  const m = /^(\d{1,10})\.(\d{1,10})\.(\d{1,10})$/.exec(name);
  const parts = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
  if (!m || parts.some((n) => n > MAX_INT32)) {
    throw invalidParameter(
      `'${name}' is not a valid image version name. Use three whole numbers separated by periods, MAJOR.MINOR.PATCH, each from 0 to ${MAX_INT32} (for example 1.0.0).`,
      'galleryImageVersionName',
    );
  }
  return parts as [number, number, number];
}

function pickStorageType(v: string | undefined, field: string, fallback: StorageAccountType): StorageAccountType {
  if (v === undefined || v === null) return fallback;
  const hit = STORAGE_TYPES.find((t) => t.toLowerCase() === v.toLowerCase());
  if (!hit) throw invalidParameter(`'${v}' is not a valid storage account type for '${field}'. Allowed values: ${STORAGE_TYPES.join(', ')}.`, field);
  return hit;
}

const regionsEqual = (a: TargetRegion[], b: TargetRegion[]) =>
  JSON.stringify([...a].sort((x, y) => x.name.localeCompare(y.name))) === JSON.stringify([...b].sort((x, y) => x.name.localeCompare(y.name)));

export class ImageVersionService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly records: ImageVersionRepository,
    private readonly galleries: GalleryService,
    private readonly regions: RegionCatalog,
    private readonly operations: OperationStore,
    private readonly imageStores: Map<string, ChunkStore>,
    private readonly uploads: UploadService,
    private readonly exportSettings: { tmpDir: string },
    private readonly capture: CaptureService,
    private readonly vmRecords: VmRepository,
    private readonly labRecords: LabRepository,
  ) {}

  private notFoundError(rg: string, gallery: string, image: string, name: string) {
    return notFound(
      'ResourceNotFound',
      `The Resource 'Microsoft.Compute/galleries/${gallery}/images/${image}/versions/${name}' under resource group '${rg}' was not found.`,
    );
  }

  /** Returns a version by name; `latest` resolves to the highest version not excluded from latest. */
  async get(sub: string, rg: string, gallery: string, image: string, name: string): Promise<ImageVersion> {
    const { gallery: g, image: img } = await this.galleries.requireImage(this.db, sub, rg, gallery, image, true);
    if (name.toLowerCase() === 'latest') {
      const latest = await this.records.latest(this.db, img);
      if (!latest) {
        throw notFound(
          'ResourceNotFound',
          `Image definition '${img.name}' has no version that can be used as latest: it has no versions, or every version is excluded from latest or not yet provisioned.`,
        );
      }
      return latest;
    }
    const v = await this.records.byName(this.db, img, name);
    if (!v) throw this.notFoundError(rg, g.name, img.name, name);
    return v;
  }

  async list(sub: string, rg: string, gallery: string, image: string, after: string | undefined, limit: number): Promise<ImageVersion[]> {
    const { image: img } = await this.galleries.requireImage(this.db, sub, rg, gallery, image, true);
    return this.records.list(img, after, limit);
  }

  /** What still uses each version: VMs built on it and labs made from it (a version in use cannot be deleted). */
  async usedBy(keys: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (!keys.length) return out;
    const add = (k: string, what: string) => out.set(k, [...(out.get(k) ?? []), what]);
    for (const v of await this.vmRecords.usersOfVersions(keys)) {
      const lab = /^labs\/([^/]+)\/(.+)$/.exec(v.name);
      add(v.versionKey, lab ? `lab ${lab[1]}, VM ${lab[2]}` : `VM ${v.resourceGroup}/${v.name}`);
    }
    for (const l of await this.labRecords.madeFromVersions(keys)) {
      if (!(out.get(l.versionKey) ?? []).some((x) => x.startsWith(`lab ${l.name},`))) add(l.versionKey, `lab ${l.name}`);
    }
    return out;
  }

  private checkTargetRegions(
    input: ImageVersionInput,
    galleryName: string,
    location: string,
    current?: ImageVersion,
  ): { targets: TargetRegion[]; replicaCount: number } {
    const pp = input.publishingProfile ?? {};
    const replicaCount = pp.replicaCount ?? current?.replicaCount ?? 1;
    if (!Number.isInteger(replicaCount) || replicaCount < 1 || replicaCount > 100) {
      throw invalidParameter(
        `publishingProfile.replicaCount must be a whole number from 1 to 100; got ${replicaCount}.`,
        'properties.publishingProfile.replicaCount',
      );
    }
    const defaultType = pickStorageType(pp.storageAccountType, 'properties.publishingProfile.storageAccountType', 'Standard_LRS');
    const home = this.regions.require(location);
    if (!pp.targetRegions) {
      if (current) return { targets: current.targetRegions, replicaCount };
      return { targets: [{ name: home.name, regionalReplicaCount: replicaCount, storageAccountType: defaultType }], replicaCount };
    }
    if (!Array.isArray(pp.targetRegions) || pp.targetRegions.length === 0) {
      throw invalidParameter(
        `publishingProfile.targetRegions must list at least the version's own region '${home.name}'.`,
        'properties.publishingProfile.targetRegions',
      );
    }
    const targets: TargetRegion[] = [];
    pp.targetRegions.forEach((t, i) => {
      const field = `properties.publishingProfile.targetRegions[${i}]`;
      const region = this.regions.require(t.name, `${field}.name`);
      if (region.geography !== home.geography) {
        const same = this.regions
          .inGeography(home.geography)
          .map((r) => r.name)
          .join(', ');
        throw invalidParameter(
          `Target region '${region.name}' is in geography '${region.geography}', but gallery '${galleryName}' is in '${home.geography}'. Versions replicate only within their gallery's geography: use ${same}.`,
          `${field}.name`,
        );
      }
      if (targets.some((x) => x.name === region.name)) throw invalidParameter(`Target region '${region.name}' is listed twice.`, `${field}.name`);
      const count = t.regionalReplicaCount ?? replicaCount;
      if (!Number.isInteger(count) || count < 1 || count > 100) {
        throw invalidParameter(
          `regionalReplicaCount for '${region.name}' must be a whole number from 1 to 100; got ${count}.`,
          `${field}.regionalReplicaCount`,
        );
      }
      targets.push({
        name: region.name,
        regionalReplicaCount: count,
        storageAccountType: pickStorageType(t.storageAccountType, `${field}.storageAccountType`, defaultType),
      });
    });
    if (!targets.some((t) => t.name === home.name)) {
      throw invalidParameter(
        `publishingProfile.targetRegions must include the version's own region '${home.name}' (where its gallery is). Add {"name": "${home.name}"} to the list.`,
        'properties.publishingProfile.targetRegions',
      );
    }
    return { targets, replicaCount };
  }

  private async checkStorage(p: Principal, input: ImageVersionInput, image: GalleryImageRecord): Promise<VersionStorage> {
    const sp = input.storageProfile;
    const unsupported = (what: string, field: string) =>
      invalidParameter(
        `${what} is not supported by this labforge server. Upload the disk to /uploads and use the upload's URL as storageProfile.osDiskImage.source.uri, create the version from another gallery image version (storageProfile.source.id), or as an empty disk ("labforge:empty-disk?sizeGB=N").`,
        field,
      );
    if (!sp || (!sp.source && !sp.osDiskImage)) {
      throw invalidParameter(
        "properties.storageProfile is required: say where the version's disks come from, with storageProfile.source.id (another gallery image version) or storageProfile.osDiskImage.source.uri.",
        'properties.storageProfile',
      );
    }
    if (sp.source?.virtualMachineId) return this.checkCapture(p, sp.source.virtualMachineId, image, Boolean(sp.osDiskImage || sp.dataDiskImages?.length));
    if (sp.source?.uri) throw unsupported(`Importing a disk from '${sp.source.uri}'`, 'properties.storageProfile.source.uri');
    if (sp.source?.id) {
      if (sp.osDiskImage || sp.dataDiskImages?.length) {
        throw invalidParameter('Give either storageProfile.source.id or osDiskImage/dataDiskImages sources, not both.', 'properties.storageProfile');
      }
      const m =
        /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/images\/([^/]+)\/versions\/([^/]+)$/i.exec(
          sp.source.id,
        );
      if (!m) throw unsupported(`Using '${sp.source.id}' as a source`, 'properties.storageProfile.source.id');
      const [, s, rg, g, i, v] = m as unknown as [string, string, string, string, string, string];
      let src: ImageVersion;
      try {
        src = await this.get(s, rg, g, i, v);
      } catch (err) {
        if (err instanceof LabforgeError && err.status === 404) {
          throw invalidParameter(`The source image version '${sp.source.id}' does not exist: ${err.message}`, 'properties.storageProfile.source.id');
        }
        throw err;
      }
      if (src.provisioningState !== 'Succeeded') {
        throw conflict(
          `The source image version '${src.name}' is ${src.provisioningState}, not Succeeded; wait for it to finish, then retry.`,
          'properties.storageProfile.source.id',
        );
      }
      return { sourceId: versionArmId(src), osDisk: src.storage.osDisk, dataDisks: src.storage.dataDisks };
    }
    const disk = async (d: { hostCaching?: string; source?: { id?: string; uri?: string } } | undefined, field: string, lun?: number): Promise<DiskImage> => {
      const uri = d?.source?.uri;
      if (!uri) {
        if (d?.source?.id) throw unsupported(`A managed disk or snapshot source ('${d.source.id}')`, `${field}.source.id`);
        throw invalidParameter(`${field}.source.uri is required.`, `${field}.source.uri`);
      }
      const caching = (['None', 'ReadOnly', 'ReadWrite'] as const).find((c) => c.toLowerCase() === (d?.hostCaching ?? 'ReadWrite').toLowerCase());
      if (!caching)
        throw invalidParameter(`'${d?.hostCaching}' is not a valid hostCaching. Allowed values: None, ReadOnly, ReadWrite.`, `${field}.hostCaching`);
      const extra = lun !== undefined ? { lun } : {};
      if (UploadService.idFromUri(uri)) {
        const upload = await this.uploads.requireForImport(p, uri, `${field}.source.uri`);
        // The size is known once the inspector has read the disk.
        return { sizeGB: 0, hostCaching: caching, source: { kind: 'upload', uri, uploadId: upload.id }, ...extra };
      }
      const m = EMPTY_DISK.exec(uri);
      if (!m) throw unsupported(`Importing a disk from '${uri}'`, `${field}.source.uri`);
      const sizeGB = Number(m[1]);
      if (sizeGB < 1 || sizeGB > 32767) throw invalidParameter(`An empty disk must be 1 to 32767 GB; got ${sizeGB}.`, `${field}.source.uri`);
      return { sizeGB, hostCaching: caching, source: { kind: 'empty', uri }, ...extra };
    };

    if (!sp.osDiskImage)
      throw invalidParameter('storageProfile.osDiskImage is required: every image version has an OS disk.', 'properties.storageProfile.osDiskImage');
    const luns = new Set<number>();
    const dataDiskInputs = (sp.dataDiskImages ?? []).map((d, i) => {
      const field = `properties.storageProfile.dataDiskImages[${i}]`;
      if (!Number.isInteger(d.lun) || (d.lun as number) < 0 || (d.lun as number) > 63)
        throw invalidParameter(`${field}.lun must be a whole number from 0 to 63.`, `${field}.lun`);
      if (luns.has(d.lun as number)) throw invalidParameter(`LUN ${d.lun} is used by two data disks; each data disk needs its own LUN.`, `${field}.lun`);
      luns.add(d.lun as number);
      return disk(d, field, d.lun);
    });
    const dataDisks: DiskImage[] = [];
    for (const d of dataDiskInputs) dataDisks.push(await d);
    return { osDisk: await disk(sp.osDiskImage, 'properties.storageProfile.osDiskImage'), dataDisks };
  }

  /** A version captured from a VM: the image definition's OS type, generation and state must match the VM. */
  private async checkCapture(p: Principal, vmId: string, image: GalleryImageRecord, disksToo: boolean): Promise<VersionStorage> {
    const field = 'properties.storageProfile.source.virtualMachineId';
    if (disksToo) throw invalidParameter('Give either storageProfile.source.virtualMachineId or osDiskImage/dataDiskImages sources, not both.', field);
    const vm = await this.capture.source(p, vmId, field);
    if (vm.osType !== image.osType || vm.hyperVGeneration !== image.hyperVGeneration) {
      throw invalidParameter(
        `The VM runs a ${vm.osType} ${vm.hyperVGeneration} image but image definition '${image.name}' is ${image.osType} ${image.hyperVGeneration}. Capture it into an image definition with the same OS type and Hyper-V generation.`,
        field,
      );
    }
    if (image.osState === 'Generalized' && !vm.generalized) {
      throw conflict(
        `Image definition '${image.name}' is Generalized, but the VM was not generalized. Deprovision the guest (cloud-init clean, waagent -deprovision+user, or sysprep on Windows), stop the VM, call POST .../generalize on it, then capture. Or capture into a Specialized image definition to keep the VM as it is.`,
        field,
        'OperationNotAllowed',
      );
    }
    if (image.osState === 'Specialized' && vm.generalized) {
      throw conflict(
        `The VM was generalized, so its disk has no identity of its own any more; capture it into a Generalized image definition, not the Specialized '${image.name}'.`,
        field,
        'OperationNotAllowed',
      );
    }
    return {
      sourceVirtualMachineId: vmId,
      osDisk: { sizeGB: 0, hostCaching: 'ReadWrite', source: { kind: 'vm', id: vmId, vmKey: vm.vmKey, region: vm.location } },
      dataDisks: [],
    };
  }

  /** Creates a version (an operation) or updates its publishing profile (an operation when regions change). */
  async createOrUpdate(
    p: Principal,
    sub: string,
    rg: string,
    gallery: string,
    image: string,
    name: string,
    input: ImageVersionInput,
    mode: 'put' | 'patch',
    pre?: Preconditions,
    preset?: VersionStorage,
  ): Promise<{ version: ImageVersion; created: boolean; operation?: Operation }> {
    if (name.toLowerCase() === 'latest') {
      throw invalidParameter(
        "'latest' is a reserved name that always points to the newest version; give the new version a number such as 1.0.0.",
        'galleryImageVersionName',
      );
    }
    const [major, minor, patch] = parseVersionName(name);
    const tags = input.tags === undefined ? undefined : checkTags(input.tags);
    const pp = input.publishingProfile ?? {};
    if (pp.endOfLifeDate && Number.isNaN(Date.parse(pp.endOfLifeDate))) {
      throw invalidParameter(
        `'${pp.endOfLifeDate}' is not a date for 'publishingProfile.endOfLifeDate'. Use ISO 8601, for example 2027-06-30T00:00:00Z.`,
        'properties.publishingProfile.endOfLifeDate',
      );
    }
    const { image: img0 } = await this.galleries.requireImage(this.db, sub, rg, gallery, image, true);
    // Resolve the content source before the write transaction: it may read other versions.
    const exists = await this.records.byName(this.db, img0, name);
    const storage = exists || mode === 'patch' ? undefined : (preset ?? (await this.checkStorage(p, input, img0)));

    const result = await this.db.transaction().execute(async (tx) => {
      const { gallery: g, image: img } = await this.galleries.requireImage(tx, sub, rg, gallery, image, true);
      const current = await this.records.byName(tx, img, name, true);
      checkPreconditions(`Image version '${name}'`, current?.etag, pre);
      if (current) {
        if (input.location && this.regions.require(input.location).name !== current.location) {
          throw new LabforgeError(
            409,
            'PropertyChangeNotAllowed',
            `Changing property 'location' is not allowed: version ${name} is in '${current.location}'.`,
            'location',
          );
        }
        if (input.storageProfile && (input.storageProfile.source?.id ?? null) !== (current.storage.sourceId ?? null)) {
          throw new LabforgeError(
            409,
            'PropertyChangeNotAllowed',
            `Changing property 'storageProfile' is not allowed: an image version's content is immutable. Create a new version (for example ${major}.${minor}.${patch + 1}) instead.`,
            'properties.storageProfile',
          );
        }
        const active = await this.operations.activeFor(tx, versionArmId(current));
        if (active) {
          throw conflict(
            `Image version '${name}' is busy with operation ${active.id} (${active.kind}, ${active.percentComplete}% done). Wait for it to finish or cancel it, then retry.`,
          );
        }
        const { targets, replicaCount } = this.checkTargetRegions(input, g.name, current.location, current);
        const change: ImageVersionChange = { replicaCount, targetRegions: targets };
        if (tags !== undefined || mode === 'put') change.tags = tags ?? {};
        if (pp.excludeFromLatest !== undefined || mode === 'put') change.excludeFromLatest = Boolean(pp.excludeFromLatest);
        if (pp.endOfLifeDate !== undefined || mode === 'put') change.endOfLifeDate = pp.endOfLifeDate ? new Date(pp.endOfLifeDate).toISOString() : null;
        let operation: Operation | undefined;
        if (!regionsEqual(targets, current.targetRegions)) {
          const replication = { ...current.replication };
          for (const t of targets) if (replication[t.name]?.state !== 'Completed') replication[t.name] = { state: 'Replicating', progress: 0 };
          change.replication = replication;
          change.provisioningState = 'Updating';
          operation = await this.operations.enqueue(tx, {
            kind: VERSION_REPLICATE,
            subscriptionId: current.subscriptionId,
            location: current.location,
            targetId: versionArmId(current),
            input: { versionKey: current.key },
            createdBy: p.subject,
          });
        }
        return { version: await this.records.modify(tx, current, p, change), created: false, operation };
      }
      if (mode === 'patch') throw this.notFoundError(rg, g.name, img.name, name);
      if (input.location && this.regions.require(input.location).name !== g.location) {
        throw invalidParameter(
          `An image version is created in its gallery's region '${g.location}'; the request says '${input.location}'. List other regions in publishingProfile.targetRegions to replicate there.`,
          'location',
        );
      }
      const { targets, replicaCount } = this.checkTargetRegions(input, g.name, g.location);
      const replication: Record<string, RegionReplication> = {};
      for (const t of targets) replication[t.name] = { state: 'Replicating', progress: 0 };
      const version = await this.records.insert(
        tx,
        p,
        { key: img.key, name: img.name, galleryName: g.name, subscriptionId: g.subscriptionId, resourceGroup: g.resourceGroup, location: g.location },
        {
          key: randomUUID(),
          name: `${major}.${minor}.${patch}`,
          tags: tags ?? {},
          provisioningState: 'Creating',
          excludeFromLatest: Boolean(pp.excludeFromLatest),
          endOfLifeDate: pp.endOfLifeDate ? new Date(pp.endOfLifeDate).toISOString() : null,
          replicaCount,
          targetRegions: targets,
          storage: storage as VersionStorage,
          replication,
          publishedDate: new Date().toISOString(),
        },
      );
      const operation = await this.operations.enqueue(tx, {
        kind: VERSION_CREATE,
        subscriptionId: version.subscriptionId,
        location: version.location,
        targetId: versionArmId(version),
        input: { versionKey: version.key },
        createdBy: p.subject,
      });
      return { version, created: true, operation };
    });
    if (result.operation) this.operations.notify();
    return result;
  }

  async delete(sub: string, rg: string, gallery: string, image: string, name: string, pre?: Preconditions): Promise<boolean> {
    const deleted = await this.db.transaction().execute(async (tx) => {
      const { image: img } = await this.galleries.requireImage(tx, sub, rg, gallery, image, true);
      const row = await this.records.byName(tx, img, name, true);
      checkPreconditions(`Image version '${name}'`, row?.etag, pre);
      if (!row) return undefined;
      const users = await this.vmRecords.usersOfVersions([row.key], 6, tx);
      if (users.length) {
        const names = users.slice(0, 5).map((u) => `${u.resourceGroup}/${u.name}`);
        throw conflict(
          `Image version '${row.name}' is still used by virtual machine(s) ${names.join(', ')}${users.length > 5 ? ' and more' : ''}: their disks are built on it. Delete those VMs first (capture them if their changes matter), then delete the version.`,
          undefined,
          'VersionInUse',
        );
      }
      const active = await this.operations.activeFor(tx, versionArmId(row));
      if (active) {
        throw conflict(
          `Image version '${row.name}' is busy with operation ${active.id} (${active.kind}, ${active.percentComplete}% done). Wait for it to finish, or cancel it, before deleting the version.`,
        );
      }
      await this.records.delete(tx, row.key);
      return row.key;
    });
    if (!deleted) return false;
    await this.dropManifests(deleted);
    return true;
  }

  /** Streams one disk of a version from a region where its replica is complete. */
  async exportContent(
    sub: string,
    rg: string,
    gallery: string,
    image: string,
    name: string,
    opts: { format: string; disk?: string; region?: string },
  ): Promise<ExportStream & { fileName: string }> {
    const v = await this.get(sub, rg, gallery, image, name);
    const format = EXPORT_FORMATS.find((f) => f === opts.format.toLowerCase());
    if (!format) throw invalidParameter(`'${opts.format}' is not an export format. Use one of: ${EXPORT_FORMATS.join(', ')}.`, 'format');
    const region = opts.region ? this.regions.require(opts.region, 'region').name : v.location;
    if (v.provisioningState !== 'Succeeded' && v.provisioningState !== 'Updating') {
      throw conflict(`Version ${v.name} is ${v.provisioningState}; only a version whose content is complete can be downloaded.`);
    }
    if (v.replication[region]?.state !== 'Completed') {
      const done = Object.entries(v.replication)
        .filter(([, r]) => r.state === 'Completed')
        .map(([n]) => n);
      throw conflict(
        `Version ${v.name} has no completed replica in region '${region}'. Download it from ${done.join(' or ') || 'another region'}, or wait for replication.`,
        'region',
      );
    }
    const manifest = await this.regionStore(region).getManifest(v.key);
    const diskName = opts.disk ?? 'os';
    const disk = manifest?.disks.find((d) => d.name === diskName);
    if (!manifest || !disk) {
      const names = manifest?.disks.map((d) => d.name).join(', ') ?? 'none';
      throw notFound('ResourceNotFound', `Version ${v.name} has no disk '${diskName}' in region '${region}'. Its disks: ${names}.`);
    }
    const out = await exportDisk(this.regionStore(region), disk, format, this.exportSettings.tmpDir);
    const ext = format === 'raw' ? 'img' : format;
    return { ...out, fileName: `${v.imageName}-${v.name}-${diskName}.${ext}` };
  }

  private regionStore(region: string): ChunkStore {
    const store = this.imageStores.get(region);
    if (!store) throw new LabforgeError(500, 'RegionNotConfigured', `Region '${region}' has no image store configured on this server.`);
    return store;
  }

  /** Removes a version's manifests from every region (its chunks go at the next garbage collection). */
  async dropManifests(versionKey: string): Promise<void> {
    for (const store of this.imageStores.values()) await store.deleteManifest(versionKey);
  }
}
