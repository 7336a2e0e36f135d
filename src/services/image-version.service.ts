// Image versions: immutable content of an image definition, its target
// regions and replication state, and the "latest" rule. Creating a version or
// changing its target regions runs as a durable operation (see the handlers
// at the end of this file).
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { CaptureStats } from '../compute/capture.js';
import type { Database, Db, GalleryImageTable, GalleryImageVersionTable } from '../db/schema.js';
import { conflict, invalidParameter, LabforgeError, notFound } from '../errors.js';
import { type ChunkStore, DEFAULT_BLOCK_SIZE, type DiskManifest, MANIFEST_FORMAT, type Manifest } from '../imagestore/chunk-store.js';
import { EXPORT_FORMATS, type ExportStream, exportDisk } from '../imagestore/export.js';
import { importDisk } from '../imagestore/import.js';
import { replicateVersion } from '../imagestore/replicate.js';
import { versionArmId } from '../lib/arm-id.js';
import type { Operation, OperationStore } from '../operations/operation.store.js';
import type { OperationHandler } from '../operations/worker.js';
import type { VmRepository } from '../repositories/vm.repository.js';
import type { CaptureService } from './capture.service.js';
import {
  checkPreconditions,
  checkTags,
  creationStamp,
  forUpdate,
  keyOf,
  modificationStamp,
  type Preconditions,
  type Principal,
  type RegionCatalog,
  type ResourceMeta,
  resourceMeta,
} from './common.js';
import type { GalleryService } from './gallery.service.js';
import { UploadService } from './upload.service.js';

export type ReplicationState = 'Unknown' | 'Replicating' | 'Completed' | 'Failed';
export type StorageAccountType = 'Standard_LRS' | 'Standard_ZRS' | 'Premium_LRS';

export interface TargetRegion {
  name: string;
  regionalReplicaCount: number;
  storageAccountType: StorageAccountType;
}

export interface RegionReplication {
  state: ReplicationState;
  progress: number;
  details?: string;
}

/** Where a disk's content comes from. `empty` is a blank disk of the given size. */
export type DiskSource =
  | { kind: 'empty'; uri: string }
  | { kind: 'version'; id: string }
  | { kind: 'upload'; uri: string; uploadId: string; format?: string }
  /** A VM's OS disk, captured at the cost of what changed since its image. */
  | { kind: 'vm'; id: string; vmKey: string; region: string }
  /** A disk file on the server itself (built-in images only; never from the API). */
  | { kind: 'file'; path: string };

export interface DiskImage {
  sizeGB: number;
  hostCaching: 'None' | 'ReadOnly' | 'ReadWrite';
  source: DiskSource;
  lun?: number;
}

export interface VersionStorage {
  /** Set when the version was made from another gallery image version. */
  sourceId?: string;
  /** Set when the version was captured from a virtual machine. */
  sourceVirtualMachineId?: string;
  osDisk: DiskImage;
  dataDisks: DiskImage[];
}

export interface ImageVersion extends ResourceMeta {
  galleryName: string;
  imageName: string;
  imageKey: string;
  excludeFromLatest: boolean;
  endOfLifeDate: string | null;
  replicaCount: number;
  targetRegions: TargetRegion[];
  storage: VersionStorage;
  replication: Record<string, RegionReplication>;
  publishedDate: string;
}

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

const toVersion = (r: GalleryImageVersionTable, galleryName: string, imageName: string): ImageVersion =>
  Object.assign(resourceMeta(r), {
    galleryName,
    imageName,
    imageKey: r.image_id,
    excludeFromLatest: r.exclude_from_latest === 1,
    endOfLifeDate: r.end_of_life_date,
    replicaCount: r.replica_count,
    targetRegions: JSON.parse(r.target_regions),
    storage: JSON.parse(r.storage_profile),
    replication: JSON.parse(r.replication),
    publishedDate: r.published_date,
  });

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
    private readonly galleries: GalleryService,
    private readonly regions: RegionCatalog,
    private readonly operations: OperationStore,
    private readonly imageStores: Map<string, ChunkStore>,
    private readonly uploads: UploadService,
    private readonly importSettings: { maxDiskBytes: number; tmpDir: string },
    private readonly capture: CaptureService,
    private readonly vmRecords: VmRepository,
  ) {}

  private async versionRow(db: Db, imageId: string, name: string, lock = false) {
    const q = db.selectFrom('gallery_image_versions').selectAll().where('image_id', '=', imageId).where('name_key', '=', keyOf(name));
    return (lock ? forUpdate(db, q) : q).executeTakeFirst();
  }

  private notFoundError(rg: string, gallery: string, image: string, name: string) {
    return notFound(
      'ResourceNotFound',
      `The Resource 'Microsoft.Compute/galleries/${gallery}/images/${image}/versions/${name}' under resource group '${rg}' was not found.`,
    );
  }

  /** Returns a version by name; `latest` resolves to the highest version not excluded from latest. */
  async get(sub: string, rg: string, gallery: string, image: string, name: string): Promise<ImageVersion> {
    const { gallery: g, image: img } = await this.galleries.requireImageRow(this.db, sub, rg, gallery, image, true);
    if (name.toLowerCase() === 'latest') {
      const latest = await this.latest(this.db, img.id);
      if (!latest) {
        throw notFound(
          'ResourceNotFound',
          `Image definition '${img.name}' has no version that can be used as latest: it has no versions, or every version is excluded from latest or not yet provisioned.`,
        );
      }
      return toVersion(latest, g.name, img.name);
    }
    const row = await this.versionRow(this.db, img.id, name);
    if (!row) throw this.notFoundError(rg, g.name, img.name, name);
    return toVersion(row, g.name, img.name);
  }

  /** The highest version (by number, not creation time) that is provisioned and not excluded from latest. */
  async latest(db: Db, imageKey: string): Promise<GalleryImageVersionTable | undefined> {
    return db
      .selectFrom('gallery_image_versions')
      .selectAll()
      .where('image_id', '=', imageKey)
      .where('exclude_from_latest', '=', 0)
      .where('provisioning_state', '=', 'Succeeded')
      .orderBy('major', 'desc')
      .orderBy('minor', 'desc')
      .orderBy('patch', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  async list(sub: string, rg: string, gallery: string, image: string, after: string | undefined, limit: number): Promise<ImageVersion[]> {
    const { gallery: g, image: img } = await this.galleries.requireImageRow(this.db, sub, rg, gallery, image, true);
    let q = this.db.selectFrom('gallery_image_versions').selectAll().where('image_id', '=', img.id);
    if (after) {
      const [a, b, c] = after.split('.').map(Number) as [number, number, number];
      q = q.where((eb) =>
        eb.or([
          eb('major', '>', a),
          eb.and([eb('major', '=', a), eb('minor', '>', b)]),
          eb.and([eb('major', '=', a), eb('minor', '=', b), eb('patch', '>', c)]),
        ]),
      );
    }
    const rows = await q.orderBy('major').orderBy('minor').orderBy('patch').limit(limit).execute();
    return rows.map((r) => toVersion(r, g.name, img.name));
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
    const labs = await this.db.selectFrom('labs').select(['version_id', 'name']).where('version_id', 'in', keys).execute();
    for (const l of labs) if (!(out.get(l.version_id) ?? []).some((x) => x.startsWith(`lab ${l.name},`))) add(l.version_id, `lab ${l.name}`);
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

  private async checkStorage(p: Principal, input: ImageVersionInput, image: GalleryImageTable): Promise<VersionStorage> {
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
  private async checkCapture(p: Principal, vmId: string, image: GalleryImageTable, disksToo: boolean): Promise<VersionStorage> {
    const field = 'properties.storageProfile.source.virtualMachineId';
    if (disksToo) throw invalidParameter('Give either storageProfile.source.virtualMachineId or osDiskImage/dataDiskImages sources, not both.', field);
    const vm = await this.capture.source(p, vmId, field);
    if (vm.osType !== image.os_type || vm.hyperVGeneration !== image.hyper_v_generation) {
      throw invalidParameter(
        `The VM runs a ${vm.osType} ${vm.hyperVGeneration} image but image definition '${image.name}' is ${image.os_type} ${image.hyper_v_generation}. Capture it into an image definition with the same OS type and Hyper-V generation.`,
        field,
      );
    }
    if (image.os_state === 'Generalized' && !vm.generalized) {
      throw conflict(
        `Image definition '${image.name}' is Generalized, but the VM was not generalized. Deprovision the guest (cloud-init clean, waagent -deprovision+user, or sysprep on Windows), stop the VM, call POST .../generalize on it, then capture. Or capture into a Specialized image definition to keep the VM as it is.`,
        field,
        'OperationNotAllowed',
      );
    }
    if (image.os_state === 'Specialized' && vm.generalized) {
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
    const { image: img0 } = await this.galleries.requireImageRow(this.db, sub, rg, gallery, image, true);
    // Resolve the content source before the write transaction: it may read other versions.
    const exists = await this.versionRow(this.db, img0.id, name);
    const storage = exists || mode === 'patch' ? undefined : (preset ?? (await this.checkStorage(p, input, img0)));

    const result = await this.db.transaction().execute(async (tx) => {
      const { gallery: g, image: img } = await this.galleries.requireImageRow(tx, sub, rg, gallery, image, true);
      const row = await this.versionRow(tx, img.id, name, true);
      checkPreconditions(`Image version '${name}'`, row?.etag, pre);
      if (row) {
        const current = toVersion(row, g.name, img.name);
        if (input.location && this.regions.require(input.location).name !== row.location) {
          throw new LabforgeError(
            409,
            'PropertyChangeNotAllowed',
            `Changing property 'location' is not allowed: version ${name} is in '${row.location}'.`,
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
        const { targets, replicaCount } = this.checkTargetRegions(input, g.name, row.location, current);
        const upd: Partial<GalleryImageVersionTable> = { ...modificationStamp(p), replica_count: replicaCount, target_regions: JSON.stringify(targets) };
        if (tags !== undefined || mode === 'put') upd.tags = JSON.stringify(tags ?? {});
        if (pp.excludeFromLatest !== undefined || mode === 'put') upd.exclude_from_latest = pp.excludeFromLatest ? 1 : 0;
        if (pp.endOfLifeDate !== undefined || mode === 'put') upd.end_of_life_date = pp.endOfLifeDate ? new Date(pp.endOfLifeDate).toISOString() : null;
        let operation: Operation | undefined;
        if (!regionsEqual(targets, current.targetRegions)) {
          const replication = { ...current.replication };
          for (const t of targets) if (replication[t.name]?.state !== 'Completed') replication[t.name] = { state: 'Replicating', progress: 0 };
          upd.replication = JSON.stringify(replication);
          upd.provisioning_state = 'Updating';
          operation = await this.operations.enqueue(tx, {
            kind: VERSION_REPLICATE,
            subscriptionId: row.subscription_id,
            location: row.location,
            targetId: versionArmId(current),
            input: { versionKey: row.id },
            createdBy: p.subject,
          });
        }
        await tx.updateTable('gallery_image_versions').set(upd).where('id', '=', row.id).execute();
        return { version: toVersion({ ...row, ...upd }, g.name, img.name), created: false, operation };
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
      const values: GalleryImageVersionTable = {
        id: randomUUID(),
        subscription_id: g.subscription_id,
        resource_group: g.resource_group,
        resource_group_key: g.resource_group_key,
        name: `${major}.${minor}.${patch}`,
        name_key: keyOf(`${major}.${minor}.${patch}`),
        location: g.location,
        tags: JSON.stringify(tags ?? {}),
        provisioning_state: 'Creating',
        image_id: img.id,
        major,
        minor,
        patch,
        exclude_from_latest: pp.excludeFromLatest ? 1 : 0,
        end_of_life_date: pp.endOfLifeDate ? new Date(pp.endOfLifeDate).toISOString() : null,
        replica_count: replicaCount,
        target_regions: JSON.stringify(targets),
        storage_profile: JSON.stringify(storage),
        replication: JSON.stringify(replication),
        published_date: new Date().toISOString(),
        ...creationStamp(p),
      };
      await tx.insertInto('gallery_image_versions').values(values).execute();
      const version = toVersion(values, g.name, img.name);
      const operation = await this.operations.enqueue(tx, {
        kind: VERSION_CREATE,
        subscriptionId: values.subscription_id,
        location: values.location,
        targetId: versionArmId(version),
        input: { versionKey: values.id },
        createdBy: p.subject,
      });
      return { version, created: true, operation };
    });
    if (result.operation) this.operations.notify();
    return result;
  }

  async delete(sub: string, rg: string, gallery: string, image: string, name: string, pre?: Preconditions): Promise<boolean> {
    const deleted = await this.db.transaction().execute(async (tx) => {
      const { gallery: g, image: img } = await this.galleries.requireImageRow(tx, sub, rg, gallery, image, true);
      const row = await this.versionRow(tx, img.id, name, true);
      checkPreconditions(`Image version '${name}'`, row?.etag, pre);
      if (!row) return undefined;
      const users = await this.vmRecords.usersOfVersions([row.id], 6, tx);
      if (users.length) {
        const names = users.slice(0, 5).map((u) => `${u.resourceGroup}/${u.name}`);
        throw conflict(
          `Image version '${row.name}' is still used by virtual machine(s) ${names.join(', ')}${users.length > 5 ? ' and more' : ''}: their disks are built on it. Delete those VMs first (capture them if their changes matter), then delete the version.`,
          undefined,
          'VersionInUse',
        );
      }
      const active = await this.operations.activeFor(tx, versionArmId(toVersion(row, g.name, img.name)));
      if (active) {
        throw conflict(
          `Image version '${row.name}' is busy with operation ${active.id} (${active.kind}, ${active.percentComplete}% done). Wait for it to finish, or cancel it, before deleting the version.`,
        );
      }
      await tx.deleteFrom('gallery_image_versions').where('id', '=', row.id).execute();
      return row.id;
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
    const out = await exportDisk(this.regionStore(region), disk, format, this.importSettings.tmpDir);
    const ext = format === 'raw' ? 'img' : format;
    return { ...out, fileName: `${v.imageName}-${v.name}-${diskName}.${ext}` };
  }

  // ---- operation handlers ----

  private async loadForOperation(db: Db, versionKey: string) {
    const row = await db.selectFrom('gallery_image_versions').selectAll().where('id', '=', versionKey).executeTakeFirst();
    if (!row) throw new LabforgeError(404, 'ResourceNotFound', 'The image version this operation works on no longer exists.');
    return row;
  }

  private async setReplication(db: Db, versionKey: string, region: string, r: RegionReplication): Promise<void> {
    const row = await this.loadForOperation(db, versionKey);
    const replication = JSON.parse(row.replication) as Record<string, RegionReplication>;
    replication[region] = r;
    await db
      .updateTable('gallery_image_versions')
      .set({ replication: JSON.stringify(replication) })
      .where('id', '=', versionKey)
      .execute();
  }

  /** Copies the version's content to each target region that does not hold it yet, reporting progress. */
  private regionStore(region: string): ChunkStore {
    const store = this.imageStores.get(region);
    if (!store) throw new LabforgeError(500, 'RegionNotConfigured', `Region '${region}' has no image store configured on this server.`);
    return store;
  }

  /** Writes the version's manifest in its home region: imported uploads, the disks of its source, or empty disks. */
  private async writeContent(row: GalleryImageVersionTable, ctx: Parameters<OperationHandler<{ versionKey: string }>['run']>[0]): Promise<void> {
    const home = this.regionStore(row.location);
    const storage = JSON.parse(row.storage_profile) as VersionStorage;
    let manifest: Manifest;
    if (storage.sourceId) {
      const m =
        /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/images\/([^/]+)\/versions\/([^/]+)$/i.exec(
          storage.sourceId,
        );
      const [, sub, rg, g, i, v] = m as unknown as string[];
      const source = await this.get(sub as string, rg as string, g as string, i as string, v as string);
      const found = await home.getManifest(source.key);
      if (!found) {
        throw new LabforgeError(
          409,
          'SourceNotReplicated',
          `The source version ${source.name} has no completed replica in region '${row.location}'. Add '${row.location}' to its target regions, wait for replication, then retry.`,
        );
      }
      manifest = found;
    } else if (storage.osDisk.source.kind === 'vm') {
      manifest = await this.captureContent(row, storage, ctx);
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
            tmpName: `${row.id}-${name}`,
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
      await this.db
        .updateTable('gallery_image_versions')
        .set({ storage_profile: JSON.stringify(storage) })
        .where('id', '=', row.id)
        .execute();
    }
    await home.putManifest(row.id, manifest);
    await this.dropUploads(row);
  }

  /** Captures the source VM's disk in the VM's region, then brings the version's chunks to its home region. */
  private async captureContent(
    row: GalleryImageVersionTable,
    storage: VersionStorage,
    ctx: Parameters<OperationHandler<{ versionKey: string }>['run']>[0],
  ): Promise<Manifest> {
    const src = storage.osDisk.source as Extract<DiskSource, { kind: 'vm' }>;
    const vmStore = this.regionStore(src.region);
    await ctx.progress(5, 'Capturing the VM disk (only the blocks it changed)');
    const { disk, stats } = await this.capture.disk(src.vmKey, vmStore, 'os');
    const manifest: Manifest = { format: MANIFEST_FORMAT, disks: [disk] };
    storage.osDisk.sizeGB = Math.ceil(disk.virtualSize / 2 ** 30);
    await this.db
      .updateTable('gallery_image_versions')
      .set({ storage_profile: JSON.stringify(storage) })
      .where('id', '=', row.id)
      .execute();
    ctx.checkpoint.result = { capture: stats };
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    await ctx.progress(
      40,
      `Captured ${stats.blocksChanged} changed block(s): ${stats.chunksCreated} new chunk(s), ${mib(stats.bytesCreated)} MiB stored, ${mib(stats.bytesRead)} MiB read`,
    );
    if (src.region !== row.location) {
      await vmStore.putManifest(row.id, manifest);
      await replicateVersion(vmStore, this.regionStore(row.location), row.id, { signal: ctx.signal });
      const targets = JSON.parse(row.target_regions) as TargetRegion[];
      if (!targets.some((t) => t.name === src.region)) await vmStore.deleteManifest(row.id);
    }
    return manifest;
  }

  /** Uploaded files are consumed by the import, whether it succeeded or was refused. */
  private async dropUploads(row: GalleryImageVersionTable | undefined): Promise<void> {
    if (!row) return;
    const storage = JSON.parse(row.storage_profile) as VersionStorage;
    for (const d of [storage.osDisk, ...storage.dataDisks]) if (d.source.kind === 'upload') await this.uploads.delete(d.source.uploadId);
  }

  /** Copies the version to each target region that lacks it (only the missing chunks), reporting progress. */
  private async replicateAll(ctx: Parameters<OperationHandler<{ versionKey: string }>['run']>[0], base: number): Promise<void> {
    const { versionKey } = ctx.input;
    const row = await this.loadForOperation(this.db, versionKey);
    const targets = JSON.parse(row.target_regions) as TargetRegion[];
    const home = this.regionStore(row.location);
    let i = 0;
    for (const t of targets) {
      await ctx.step(`replicate:${t.name}`, async () => {
        await this.setReplication(this.db, versionKey, t.name, { state: 'Replicating', progress: 0 });
        let last = 0;
        const result = await replicateVersion(home, this.regionStore(t.name), versionKey, {
          signal: ctx.signal,
          onProgress: (p) => {
            if (Date.now() - last < 500 || p.chunksTotal === 0) return;
            last = Date.now();
            const pct = Math.floor((100 * p.chunksDone) / p.chunksTotal);
            void this.setReplication(this.db, versionKey, t.name, { state: 'Replicating', progress: pct }).catch(() => undefined);
          },
        });
        const sent = t.name === row.location ? 'source region' : `${result.chunksSent} of ${result.chunksTotal} chunks sent (${result.bytesSent} bytes)`;
        await this.setReplication(this.db, versionKey, t.name, { state: 'Completed', progress: 100, details: sent });
        i += 1;
        await ctx.progress(base + ((100 - base) * i) / targets.length, `Replicated to ${t.name} (${sent})`);
      });
    }
    // Regions dropped from the target list lose their replica (its chunks go at the next garbage collection).
    const replication = JSON.parse((await this.loadForOperation(this.db, versionKey)).replication) as Record<string, RegionReplication>;
    for (const region of Object.keys(replication)) {
      if (!targets.some((t) => t.name === region)) {
        await this.imageStores.get(region)?.deleteManifest(versionKey);
        delete replication[region];
      }
    }
    await this.db
      .updateTable('gallery_image_versions')
      .set({ replication: JSON.stringify(replication) })
      .where('id', '=', versionKey)
      .execute();
  }

  /** Removes a version's manifests from every region (its chunks go at the next garbage collection). */
  private async dropManifests(versionKey: string): Promise<void> {
    for (const store of this.imageStores.values()) await store.deleteManifest(versionKey);
  }

  private markFailed = async (tx: Transaction<Database>, versionKey: string, details: string) => {
    const row = await tx.selectFrom('gallery_image_versions').selectAll().where('id', '=', versionKey).executeTakeFirst();
    if (!row) return;
    const replication = JSON.parse(row.replication) as Record<string, RegionReplication>;
    for (const r of Object.values(replication)) if (r.state !== 'Completed') Object.assign(r, { state: 'Failed', details });
    await tx
      .updateTable('gallery_image_versions')
      .set({ provisioning_state: 'Failed', replication: JSON.stringify(replication) })
      .where('id', '=', versionKey)
      .execute();
  };

  handlers(): OperationHandler<{ versionKey: string }>[] {
    return [
      {
        kind: VERSION_CREATE,
        run: async (ctx) => {
          await ctx.step('content', async () => {
            const row = await this.loadForOperation(this.db, ctx.input.versionKey);
            await this.writeContent(row, ctx);
            const storage = JSON.parse(row.storage_profile) as VersionStorage;
            await ctx.progress(50, `Stored ${1 + storage.dataDisks.length} disk(s) in ${row.location}`);
          });
          await this.replicateAll(ctx, 50);
          await ctx.complete('Succeeded', async (tx) => {
            await tx
              .updateTable('gallery_image_versions')
              .set({ provisioning_state: 'Succeeded', etag: `"${randomUUID()}"` })
              .where('id', '=', ctx.input.versionKey)
              .execute();
          });
        },
        onCancel: async (ctx, tx) => {
          // A version whose content never finished must not remain: remove it.
          const row = await tx.selectFrom('gallery_image_versions').selectAll().where('id', '=', ctx.input.versionKey).executeTakeFirst();
          await tx.deleteFrom('gallery_image_versions').where('id', '=', ctx.input.versionKey).execute();
          await this.dropManifests(ctx.input.versionKey);
          await this.dropUploads(row);
        },
        onFailure: async (ctx, tx, error) => {
          await this.markFailed(tx, ctx.input.versionKey, error.message);
          // A refused or broken upload is not kept: nothing of it stays on the server.
          await this.dropUploads(await tx.selectFrom('gallery_image_versions').selectAll().where('id', '=', ctx.input.versionKey).executeTakeFirst());
        },
      },
      {
        kind: VERSION_REPLICATE,
        run: async (ctx) => {
          await this.replicateAll(ctx, 0);
          await ctx.complete('Succeeded', async (tx) => {
            await tx
              .updateTable('gallery_image_versions')
              .set({ provisioning_state: 'Succeeded', etag: `"${randomUUID()}"` })
              .where('id', '=', ctx.input.versionKey)
              .execute();
          });
        },
        onCancel: async (ctx, tx) => {
          const row = await tx.selectFrom('gallery_image_versions').selectAll().where('id', '=', ctx.input.versionKey).executeTakeFirst();
          if (!row) return;
          // Keep the regions that finished; drop the ones that did not.
          const replication = JSON.parse(row.replication) as Record<string, RegionReplication>;
          const targets = (JSON.parse(row.target_regions) as TargetRegion[]).filter((t) => replication[t.name]?.state === 'Completed');
          for (const k of Object.keys(replication)) if (!targets.some((t) => t.name === k)) delete replication[k];
          await tx
            .updateTable('gallery_image_versions')
            .set({ provisioning_state: 'Succeeded', target_regions: JSON.stringify(targets), replication: JSON.stringify(replication) })
            .where('id', '=', ctx.input.versionKey)
            .execute();
        },
        onFailure: async (ctx, tx, error) => this.markFailed(tx, ctx.input.versionKey, error.message),
      },
    ];
  }
}
