// The `gallery_image_versions` table: the versions of image definitions, with
// their target regions, storage profile and replication state (JSON columns).
// Every query on the table is here, with the mapping of a row to the domain's
// `ImageVersion`. The image version service and its jobs are the only writers.
import type { Kysely } from 'kysely';
import type { Database, Db, GalleryImageVersionTable } from '../db/schema.js';
import type { Principal } from '../lib/principal.js';
import { creationStamp, forUpdate, keyOf, modificationStamp, newEtag, type ResourceMeta, resourceColumns, resourceMeta } from './common.js';

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

/** The image definition versions belong to, by key and names (versions are named after it). */
export interface ImageOfVersions {
  key: string;
  name: string;
  galleryName: string;
}

/** What a new version is made with; it lives in its image definition's group and region. Its name is `MAJOR.MINOR.PATCH`. */
export type NewImageVersion = Omit<
  ImageVersion,
  Exclude<keyof ResourceMeta, 'key' | 'name' | 'tags' | 'provisioningState'> | 'galleryName' | 'imageName' | 'imageKey'
>;

/** A change to a version (only the fields given change). */
export interface ImageVersionChange {
  provisioningState?: string;
  tags?: Record<string, string>;
  excludeFromLatest?: boolean;
  endOfLifeDate?: string | null;
  replicaCount?: number;
  targetRegions?: TargetRegion[];
  storage?: VersionStorage;
  replication?: Record<string, RegionReplication>;
}

/** A version as the usage report names it. */
export interface VersionNames {
  gallery: string;
  image: string;
  version: string;
  targetRegions: TargetRegion[];
}

export const toImageVersion = (r: GalleryImageVersionTable, galleryName: string, imageName: string): ImageVersion =>
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

const numbersOf = (name: string) => name.split('.').map(Number) as [number, number, number];

/**
 * The row of a version, from its record. Only for API code that still renders
 * rows (a lab plan's images); it goes when that code renders records.
 */
export function imageVersionRowOf(v: ImageVersion): GalleryImageVersionTable {
  const [major, minor, patch] = numbersOf(v.name);
  return {
    ...resourceColumns(v),
    image_id: v.imageKey,
    major,
    minor,
    patch,
    exclude_from_latest: v.excludeFromLatest ? 1 : 0,
    end_of_life_date: v.endOfLifeDate,
    replica_count: v.replicaCount,
    target_regions: JSON.stringify(v.targetRegions),
    storage_profile: JSON.stringify(v.storage),
    replication: JSON.stringify(v.replication),
    published_date: v.publishedDate,
  };
}

function toColumns(c: ImageVersionChange): Partial<GalleryImageVersionTable> {
  const out: Partial<GalleryImageVersionTable> = {};
  if (c.provisioningState !== undefined) out.provisioning_state = c.provisioningState;
  if (c.tags !== undefined) out.tags = JSON.stringify(c.tags);
  if (c.excludeFromLatest !== undefined) out.exclude_from_latest = c.excludeFromLatest ? 1 : 0;
  if (c.endOfLifeDate !== undefined) out.end_of_life_date = c.endOfLifeDate;
  if (c.replicaCount !== undefined) out.replica_count = c.replicaCount;
  if (c.targetRegions !== undefined) out.target_regions = JSON.stringify(c.targetRegions);
  if (c.storage !== undefined) out.storage_profile = JSON.stringify(c.storage);
  if (c.replication !== undefined) out.replication = JSON.stringify(c.replication);
  return out;
}

export class ImageVersionRepository {
  constructor(readonly db: Kysely<Database>) {}

  /** A version of an image definition by name; `lock` holds the row to the transaction's end. */
  async byName(db: Db, image: ImageOfVersions, name: string, lock = false): Promise<ImageVersion | undefined> {
    const q = db.selectFrom('gallery_image_versions').selectAll().where('image_id', '=', image.key).where('name_key', '=', keyOf(name));
    const r = await (lock ? forUpdate(db, q) : q).executeTakeFirst();
    return r ? toImageVersion(r, image.galleryName, image.name) : undefined;
  }

  /** A version by key, named after its image definition and gallery. */
  async byKey(key: string, db: Db = this.db): Promise<ImageVersion | undefined> {
    const r = await db
      .selectFrom('gallery_image_versions as v')
      .innerJoin('gallery_images as i', 'i.id', 'v.image_id')
      .innerJoin('galleries as g', 'g.id', 'i.gallery_id')
      .selectAll('v')
      .select(['i.name as image_name', 'g.name as gallery_name'])
      .where('v.id', '=', key)
      .executeTakeFirst();
    return r ? toImageVersion(r, r.gallery_name, r.image_name) : undefined;
  }

  /** The highest version (by number, not creation time) that is provisioned and not excluded from latest. */
  async latest(db: Db, image: ImageOfVersions): Promise<ImageVersion | undefined> {
    const r = await db
      .selectFrom('gallery_image_versions')
      .selectAll()
      .where('image_id', '=', image.key)
      .where('exclude_from_latest', '=', 0)
      .where('provisioning_state', '=', 'Succeeded')
      .orderBy('major', 'desc')
      .orderBy('minor', 'desc')
      .orderBy('patch', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r ? toImageVersion(r, image.galleryName, image.name) : undefined;
  }

  /** The versions of an image definition by number; `after` is the last one's name, for paging. */
  async list(image: ImageOfVersions, after: string | undefined, limit: number): Promise<ImageVersion[]> {
    let q = this.db.selectFrom('gallery_image_versions').selectAll().where('image_id', '=', image.key);
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
    return rows.map((r) => toImageVersion(r, image.galleryName, image.name));
  }

  /** Names of (at most `limit`) versions of an image definition, by number (an image with versions cannot be deleted). */
  async names(db: Db, imageKey: string, limit: number): Promise<string[]> {
    const rows = await db
      .selectFrom('gallery_image_versions')
      .select('name')
      .where('image_id', '=', imageKey)
      .orderBy('major')
      .orderBy('minor')
      .orderBy('patch')
      .limit(limit)
      .execute();
    return rows.map((r) => r.name);
  }

  /** Every version with the names of its image definition and gallery, by key (for the store's usage report). */
  async catalogue(): Promise<Map<string, VersionNames>> {
    const rows = await this.db
      .selectFrom('gallery_image_versions as v')
      .innerJoin('gallery_images as i', 'i.id', 'v.image_id')
      .innerJoin('galleries as g', 'g.id', 'i.gallery_id')
      .select(['v.id as id', 'v.name as version', 'i.name as image', 'g.name as gallery', 'v.target_regions as targets'])
      .execute();
    return new Map(rows.map((r) => [r.id, { gallery: r.gallery, image: r.image, version: r.version, targetRegions: JSON.parse(r.targets) as TargetRegion[] }]));
  }

  /** Inserts a version of an image definition (in its group and region). */
  async insert(
    db: Db,
    by: Principal,
    image: ImageOfVersions & Pick<ResourceMeta, 'subscriptionId' | 'resourceGroup' | 'location'>,
    v: NewImageVersion,
  ): Promise<ImageVersion> {
    const [major, minor, patch] = numbersOf(v.name);
    const row: GalleryImageVersionTable = {
      id: v.key,
      subscription_id: image.subscriptionId,
      resource_group: image.resourceGroup,
      resource_group_key: keyOf(image.resourceGroup),
      name: v.name,
      name_key: keyOf(v.name),
      location: image.location,
      tags: JSON.stringify(v.tags),
      provisioning_state: v.provisioningState,
      image_id: image.key,
      major,
      minor,
      patch,
      exclude_from_latest: v.excludeFromLatest ? 1 : 0,
      end_of_life_date: v.endOfLifeDate,
      replica_count: v.replicaCount,
      target_regions: JSON.stringify(v.targetRegions),
      storage_profile: JSON.stringify(v.storage),
      replication: JSON.stringify(v.replication),
      published_date: v.publishedDate,
      ...creationStamp(by),
    };
    await db.insertInto('gallery_image_versions').values(row).execute();
    return toImageVersion(row, image.galleryName, image.name);
  }

  /** A change by a person, with a new ETag; returns the version as it is now. */
  async modify(db: Db, current: ImageVersion, by: Principal, change: ImageVersionChange): Promise<ImageVersion> {
    const upd = { ...toColumns(change), ...modificationStamp(by) };
    await db.updateTable('gallery_image_versions').set(upd).where('id', '=', current.key).execute();
    return toImageVersion({ ...imageVersionRowOf(current), ...upd }, current.galleryName, current.imageName);
  }

  /** A change the server makes (no new ETag unless `etag`). */
  async update(db: Db, key: string, change: ImageVersionChange, opts: { etag?: boolean } = {}): Promise<void> {
    const set = { ...toColumns(change), ...(opts.etag ? { etag: newEtag() } : {}) };
    if (Object.keys(set).length) await db.updateTable('gallery_image_versions').set(set).where('id', '=', key).execute();
  }

  async delete(db: Db, key: string): Promise<void> {
    await db.deleteFrom('gallery_image_versions').where('id', '=', key).execute();
  }
}
