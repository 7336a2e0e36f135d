// The `galleries` and `gallery_images` tables: galleries and the image
// definitions in them (an image definition belongs to one gallery). Every
// query on the two tables is here, with the mapping of rows to `Gallery` and
// `GalleryImageRecord` (JSON columns parsed). The gallery service is the only
// writer; other services read through here.
import type { Kysely } from 'kysely';
import type { Database, Db, GalleryImageTable, GalleryTable } from '../db/schema.js';
import type { Principal } from '../lib/principal.js';
import { creationStamp, forUpdate, keyOf, modificationStamp, type ResourceMeta, resourceColumns, resourceMeta } from './common.js';

export interface Gallery extends ResourceMeta {
  description: string | null;
  uniqueName: string;
}

export type OsType = 'Linux' | 'Windows';
export type OsState = 'Generalized' | 'Specialized';

export interface ResourceRange {
  min?: number;
  max?: number;
}

export interface GalleryImage extends ResourceMeta {
  galleryName: string;
  osType: OsType;
  osState: OsState;
  hyperVGeneration: 'V1' | 'V2';
  architecture: 'x64' | 'Arm64';
  identifier: { publisher: string; offer: string; sku: string };
  description: string | null;
  eula: string | null;
  privacyStatementUri: string | null;
  releaseNoteUri: string | null;
  endOfLifeDate: string | null;
  recommended: { vCPUs?: ResourceRange; memory?: ResourceRange };
  disallowed: { diskTypes?: string[] };
  features: Array<{ name: string; value: string }>;
  purchasePlan: { name?: string; publisher?: string; product?: string } | null;
}

/** An image definition with the key of its gallery. */
export interface GalleryImageRecord extends GalleryImage {
  galleryKey: string;
}

/** What a new gallery is made with. */
export interface NewGallery {
  key: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  description: string | null;
  uniqueName: string;
}

export interface GalleryChange {
  tags?: Record<string, string>;
  description?: string | null;
}

/** What a new image definition is made with; it lives in its gallery's group and region. */
export type NewGalleryImage = Omit<GalleryImageRecord, keyof ResourceMeta | 'galleryName' | 'galleryKey'> & {
  key: string;
  name: string;
  tags: Record<string, string>;
};

export interface GalleryImageChange {
  tags?: Record<string, string>;
  description?: string | null;
  eula?: string | null;
  privacyStatementUri?: string | null;
  releaseNoteUri?: string | null;
  endOfLifeDate?: string | null;
  recommended?: GalleryImage['recommended'];
  disallowed?: GalleryImage['disallowed'];
  features?: GalleryImage['features'];
}

/** The key that makes publisher, offer and sku unique in a gallery. */
export const identityKeyOf = (id: { publisher: string; offer: string; sku: string }) => `${id.publisher}/${id.offer}/${id.sku}`.toLowerCase();

// Object.assign, not spread: a spread copy of this many fields made listing six times slower (see docs/PERFORMANCE.md).
export const toGallery = (r: GalleryTable): Gallery => Object.assign(resourceMeta(r), { description: r.description, uniqueName: r.unique_name });

export const toGalleryImage = (r: GalleryImageTable, galleryName: string): GalleryImageRecord =>
  Object.assign(resourceMeta(r), {
    galleryName,
    osType: r.os_type as OsType,
    osState: r.os_state as OsState,
    hyperVGeneration: r.hyper_v_generation as 'V1' | 'V2',
    architecture: r.architecture as 'x64' | 'Arm64',
    identifier: { publisher: r.publisher, offer: r.offer, sku: r.sku },
    description: r.description,
    eula: r.eula,
    privacyStatementUri: r.privacy_statement_uri,
    releaseNoteUri: r.release_note_uri,
    endOfLifeDate: r.end_of_life_date,
    recommended: JSON.parse(r.recommended),
    disallowed: JSON.parse(r.disallowed),
    features: JSON.parse(r.features),
    purchasePlan: r.purchase_plan ? JSON.parse(r.purchase_plan) : null,
    galleryKey: r.gallery_id,
  });

/**
 * The row of a gallery, from its record. Only for API code that still renders
 * rows (a lab plan's images); it goes when that code renders records.
 */
export const galleryRowOf = (g: Gallery): GalleryTable => ({ ...resourceColumns(g), description: g.description, unique_name: g.uniqueName });

/** The row of an image definition, from its record (see `galleryRowOf`). */
export const galleryImageRowOf = (i: GalleryImageRecord): GalleryImageTable => ({
  ...resourceColumns(i),
  gallery_id: i.galleryKey,
  os_type: i.osType,
  os_state: i.osState,
  hyper_v_generation: i.hyperVGeneration,
  architecture: i.architecture,
  publisher: i.identifier.publisher,
  offer: i.identifier.offer,
  sku: i.identifier.sku,
  identity_key: identityKeyOf(i.identifier),
  description: i.description,
  eula: i.eula,
  privacy_statement_uri: i.privacyStatementUri,
  release_note_uri: i.releaseNoteUri,
  end_of_life_date: i.endOfLifeDate,
  recommended: JSON.stringify(i.recommended),
  disallowed: JSON.stringify(i.disallowed),
  features: JSON.stringify(i.features),
  purchase_plan: i.purchasePlan ? JSON.stringify(i.purchasePlan) : null,
});

function galleryColumns(c: GalleryChange): Partial<GalleryTable> {
  const out: Partial<GalleryTable> = {};
  if (c.tags !== undefined) out.tags = JSON.stringify(c.tags);
  if (c.description !== undefined) out.description = c.description;
  return out;
}

function imageColumns(c: GalleryImageChange): Partial<GalleryImageTable> {
  const out: Partial<GalleryImageTable> = {};
  if (c.tags !== undefined) out.tags = JSON.stringify(c.tags);
  if (c.description !== undefined) out.description = c.description;
  if (c.eula !== undefined) out.eula = c.eula;
  if (c.privacyStatementUri !== undefined) out.privacy_statement_uri = c.privacyStatementUri;
  if (c.releaseNoteUri !== undefined) out.release_note_uri = c.releaseNoteUri;
  if (c.endOfLifeDate !== undefined) out.end_of_life_date = c.endOfLifeDate;
  if (c.recommended !== undefined) out.recommended = JSON.stringify(c.recommended);
  if (c.disallowed !== undefined) out.disallowed = JSON.stringify(c.disallowed);
  if (c.features !== undefined) out.features = JSON.stringify(c.features);
  return out;
}

export class GalleryRepository {
  constructor(readonly db: Kysely<Database>) {}

  // ---- galleries ----

  /** A gallery by resource group and name; `lock` holds the row to the transaction's end. */
  async galleryByName(db: Db, sub: string, rg: string, name: string, lock = false): Promise<Gallery | undefined> {
    const q = db
      .selectFrom('galleries')
      .selectAll()
      .where('subscription_id', '=', sub.toLowerCase())
      .where('resource_group_key', '=', keyOf(rg))
      .where('name_key', '=', keyOf(name));
    const r = await (lock ? forUpdate(db, q) : q).executeTakeFirst();
    return r ? toGallery(r) : undefined;
  }

  async galleryByKey(key: string, db: Db = this.db): Promise<Gallery | undefined> {
    const r = await db.selectFrom('galleries').selectAll().where('id', '=', key).executeTakeFirst();
    return r ? toGallery(r) : undefined;
  }

  /** Galleries of a subscription (or of one group) by group and name; `after` is the last one's "<group key>/<name key>". */
  async listGalleries(q: { sub: string; rg?: string; after?: string; limit: number }): Promise<Gallery[]> {
    let s = this.db.selectFrom('galleries').selectAll().where('subscription_id', '=', q.sub.toLowerCase());
    if (q.rg) s = s.where('resource_group_key', '=', keyOf(q.rg));
    // Keyset paging: `after` is the last row's sort key "<group>/<name>".
    if (q.after) {
      const [g, n] = q.after.split('/') as [string, string];
      s = s.where((eb) => eb.or([eb('resource_group_key', '>', g), eb.and([eb('resource_group_key', '=', g), eb('name_key', '>', n)])]));
    }
    return (await s.orderBy('resource_group_key').orderBy('name_key').limit(q.limit).execute()).map(toGallery);
  }

  /** Names of (at most `limit`) galleries in a resource group (a group with resources cannot be deleted). */
  async galleryNamesInGroup(db: Db, sub: string, rg: string, limit: number): Promise<string[]> {
    const rows = await db
      .selectFrom('galleries')
      .select('name')
      .where('subscription_id', '=', sub.toLowerCase())
      .where('resource_group_key', '=', keyOf(rg))
      .limit(limit)
      .execute();
    return rows.map((r) => r.name);
  }

  async insertGallery(db: Db, by: Principal, g: NewGallery): Promise<Gallery> {
    const row: GalleryTable = {
      id: g.key,
      subscription_id: g.subscriptionId,
      resource_group: g.resourceGroup,
      resource_group_key: keyOf(g.resourceGroup),
      name: g.name,
      name_key: keyOf(g.name),
      location: g.location,
      tags: JSON.stringify(g.tags),
      provisioning_state: 'Succeeded',
      description: g.description,
      unique_name: g.uniqueName,
      ...creationStamp(by),
    };
    await db.insertInto('galleries').values(row).execute();
    return toGallery(row);
  }

  /** A change by a person, with a new ETag; returns the gallery as it is now. */
  async modifyGallery(db: Db, current: Gallery, by: Principal, change: GalleryChange): Promise<Gallery> {
    const upd = { ...galleryColumns(change), ...modificationStamp(by) };
    await db.updateTable('galleries').set(upd).where('id', '=', current.key).execute();
    return toGallery({ ...galleryRowOf(current), ...upd });
  }

  async deleteGallery(db: Db, key: string): Promise<void> {
    await db.deleteFrom('galleries').where('id', '=', key).execute();
  }

  // ---- image definitions ----

  /** An image definition of a gallery by name; `lock` holds the row to the transaction's end. */
  async imageByName(db: Db, gallery: Pick<Gallery, 'key' | 'name'>, name: string, lock = false): Promise<GalleryImageRecord | undefined> {
    const q = db.selectFrom('gallery_images').selectAll().where('gallery_id', '=', gallery.key).where('name_key', '=', keyOf(name));
    const r = await (lock ? forUpdate(db, q) : q).executeTakeFirst();
    return r ? toGalleryImage(r, gallery.name) : undefined;
  }

  async imageByKey(key: string, db: Db = this.db): Promise<GalleryImageRecord | undefined> {
    const r = await db
      .selectFrom('gallery_images')
      .innerJoin('galleries', 'galleries.id', 'gallery_images.gallery_id')
      .selectAll('gallery_images')
      .select('galleries.name as gallery_name')
      .where('gallery_images.id', '=', key)
      .executeTakeFirst();
    return r ? toGalleryImage(r, r.gallery_name) : undefined;
  }

  /** The image definitions of a gallery by name; `after` is the last one's name key, for paging. */
  async listImages(gallery: Pick<Gallery, 'key' | 'name'>, q: { after?: string; limit?: number } = {}): Promise<GalleryImageRecord[]> {
    let s = this.db.selectFrom('gallery_images').selectAll().where('gallery_id', '=', gallery.key);
    if (q.after) s = s.where('name_key', '>', q.after);
    s = s.orderBy('name_key');
    if (q.limit !== undefined) s = s.limit(q.limit);
    return (await s.execute()).map((r) => toGalleryImage(r, gallery.name));
  }

  /** Names of (at most `limit`) image definitions of a gallery, by name (a gallery with images cannot be deleted). */
  async imageNames(db: Db, galleryKey: string, limit: number): Promise<string[]> {
    const rows = await db.selectFrom('gallery_images').select('name').where('gallery_id', '=', galleryKey).orderBy('name_key').limit(limit).execute();
    return rows.map((r) => r.name);
  }

  /** The name of the gallery's image definition with this publisher, offer and sku, if any. */
  async imageNameWithIdentifier(db: Db, galleryKey: string, id: { publisher: string; offer: string; sku: string }): Promise<string | undefined> {
    const r = await db
      .selectFrom('gallery_images')
      .select('name')
      .where('gallery_id', '=', galleryKey)
      .where('identity_key', '=', identityKeyOf(id))
      .executeTakeFirst();
    return r?.name;
  }

  /** Inserts an image definition into its gallery (same group and region). */
  async insertImage(db: Db, by: Principal, gallery: Gallery, i: NewGalleryImage): Promise<GalleryImageRecord> {
    const row: GalleryImageTable = {
      id: i.key,
      subscription_id: gallery.subscriptionId,
      resource_group: gallery.resourceGroup,
      resource_group_key: keyOf(gallery.resourceGroup),
      name: i.name,
      name_key: keyOf(i.name),
      location: gallery.location,
      tags: JSON.stringify(i.tags),
      provisioning_state: 'Succeeded',
      gallery_id: gallery.key,
      os_type: i.osType,
      os_state: i.osState,
      hyper_v_generation: i.hyperVGeneration,
      architecture: i.architecture,
      publisher: i.identifier.publisher,
      offer: i.identifier.offer,
      sku: i.identifier.sku,
      identity_key: identityKeyOf(i.identifier),
      description: i.description,
      eula: i.eula,
      privacy_statement_uri: i.privacyStatementUri,
      release_note_uri: i.releaseNoteUri,
      end_of_life_date: i.endOfLifeDate,
      recommended: JSON.stringify(i.recommended),
      disallowed: JSON.stringify(i.disallowed),
      features: JSON.stringify(i.features),
      purchase_plan: i.purchasePlan ? JSON.stringify(i.purchasePlan) : null,
      ...creationStamp(by),
    };
    await db.insertInto('gallery_images').values(row).execute();
    return toGalleryImage(row, gallery.name);
  }

  /** A change by a person, with a new ETag; returns the image definition as it is now. */
  async modifyImage(db: Db, current: GalleryImageRecord, by: Principal, change: GalleryImageChange): Promise<GalleryImageRecord> {
    const upd = { ...imageColumns(change), ...modificationStamp(by) };
    await db.updateTable('gallery_images').set(upd).where('id', '=', current.key).execute();
    return toGalleryImage({ ...galleryImageRowOf(current), ...upd }, current.galleryName);
  }

  async deleteImage(db: Db, key: string): Promise<void> {
    await db.deleteFrom('gallery_images').where('id', '=', key).execute();
  }
}
