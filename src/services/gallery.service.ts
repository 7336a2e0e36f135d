// Galleries and image definitions: metadata and the rules Azure Compute
// Gallery applies to them (names, unique identifiers, immutable fields,
// refusing to delete what still has content).
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, Db, GalleryImageTable, GalleryTable } from '../db/schema.js';
import { conflict, invalidParameter, LabforgeError, notFound } from '../errors.js';
import {
  checkName,
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
import type { ResourceGroupService } from './resource-group.service.js';

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

export interface GalleryInput {
  location?: string;
  tags?: unknown;
  description?: string | null;
}

export interface GalleryImageInput {
  location?: string;
  tags?: unknown;
  osType?: string;
  osState?: string;
  hyperVGeneration?: string;
  architecture?: string;
  identifier?: { publisher?: string; offer?: string; sku?: string };
  description?: string | null;
  eula?: string | null;
  privacyStatementUri?: string | null;
  releaseNoteUri?: string | null;
  endOfLifeDate?: string | null;
  recommended?: { vCPUs?: ResourceRange; memory?: ResourceRange } | null;
  disallowed?: { diskTypes?: string[] } | null;
  features?: Array<{ name: string; value: string }> | null;
  purchasePlan?: { name?: string; publisher?: string; product?: string } | null;
}

// Object.assign, not spread: a spread copy of this many fields made listing six times slower (see docs/PERFORMANCE.md).
const toGallery = (r: GalleryTable): Gallery => Object.assign(resourceMeta(r), { description: r.description, uniqueName: r.unique_name });

const toImage = (r: GalleryImageTable, galleryName: string): GalleryImage =>
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
  });

function pickEnum<T extends string>(value: string | undefined, allowed: readonly T[], field: string, fallback?: T): T {
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    throw invalidParameter(`The property '${field}' is required. Allowed values: ${allowed.join(', ')}.`, field);
  }
  const hit = allowed.find((a) => a.toLowerCase() === String(value).toLowerCase());
  if (!hit) throw invalidParameter(`'${value}' is not a valid value for '${field}'. Allowed values: ${allowed.join(', ')}.`, field);
  return hit;
}

function checkDate(value: string | null | undefined, field: string): string | null {
  if (value === undefined || value === null) return null;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw invalidParameter(`'${value}' is not a date for '${field}'. Use ISO 8601, for example 2027-06-30T00:00:00Z.`, field);
  return new Date(t).toISOString();
}

function checkRange(r: ResourceRange | undefined, field: string, limit: number): ResourceRange | undefined {
  if (!r) return undefined;
  for (const k of ['min', 'max'] as const) {
    const v = r[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > limit)) {
      throw invalidParameter(`'${field}.${k}' must be a whole number from 1 to ${limit}; got ${v}.`, `${field}.${k}`);
    }
  }
  if (r.min !== undefined && r.max !== undefined && r.min > r.max) {
    throw invalidParameter(`'${field}.min' (${r.min}) is larger than '${field}.max' (${r.max}).`, field);
  }
  return { ...(r.min !== undefined ? { min: r.min } : {}), ...(r.max !== undefined ? { max: r.max } : {}) };
}

const immutable = (field: string, from: string, to: string) =>
  new LabforgeError(
    409,
    'PropertyChangeNotAllowed',
    `Changing property '${field}' is not allowed (it is '${from}', the request asks for '${to}'). An image definition's ${field} is fixed at creation: create a new image definition instead.`,
    field === 'location' ? field : `properties.${field}`,
  );

export class GalleryService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly groups: ResourceGroupService,
    private readonly regions: RegionCatalog,
  ) {}

  // ---- galleries ----

  private async galleryRow(db: Db, sub: string, rg: string, name: string, lock = false): Promise<GalleryTable | undefined> {
    const q = db
      .selectFrom('galleries')
      .selectAll()
      .where('subscription_id', '=', sub.toLowerCase())
      .where('resource_group_key', '=', keyOf(rg))
      .where('name_key', '=', keyOf(name));
    return (lock ? forUpdate(db, q) : q).executeTakeFirst();
  }

  async requireGalleryRow(db: Db, sub: string, rg: string, name: string, parent = false): Promise<GalleryTable> {
    await this.groups.get(sub, rg, db);
    const row = await this.galleryRow(db, sub, rg, name);
    if (!row) {
      throw notFound(
        parent ? 'ParentResourceNotFound' : 'ResourceNotFound',
        `The Resource 'Microsoft.Compute/galleries/${name}' under resource group '${rg}' was not found.`,
      );
    }
    return row;
  }

  async getGallery(sub: string, rg: string, name: string): Promise<Gallery> {
    return toGallery(await this.requireGalleryRow(this.db, sub, rg, name));
  }

  async listGalleries(sub: string, rg: string | undefined, after: string | undefined, limit: number): Promise<Gallery[]> {
    if (rg) await this.groups.get(sub, rg);
    else await this.groups.requireSubscription(sub);
    let q = this.db.selectFrom('galleries').selectAll().where('subscription_id', '=', sub.toLowerCase());
    if (rg) q = q.where('resource_group_key', '=', keyOf(rg));
    // Keyset paging: `after` is the last row's sort key "<group>/<name>".
    if (after) {
      const [g, n] = after.split('/') as [string, string];
      q = q.where((eb) => eb.or([eb('resource_group_key', '>', g), eb.and([eb('resource_group_key', '=', g), eb('name_key', '>', n)])]));
    }
    return (await q.orderBy('resource_group_key').orderBy('name_key').limit(limit).execute()).map(toGallery);
  }

  async createOrUpdateGallery(
    p: Principal,
    sub: string,
    rg: string,
    name: string,
    input: GalleryInput,
    mode: 'put' | 'patch',
    pre?: Preconditions,
  ): Promise<{ gallery: Gallery; created: boolean }> {
    const group = await this.groups.get(sub, rg);
    checkName('gallery', name);
    const tags = input.tags === undefined ? undefined : checkTags(input.tags);
    return this.db.transaction().execute(async (tx) => {
      const row = await this.galleryRow(tx, sub, rg, name, true);
      checkPreconditions(`Gallery '${name}'`, row?.etag, pre);
      if (row) {
        if (input.location && this.regions.require(input.location).name !== row.location) {
          throw immutable('location', row.location, input.location);
        }
        const upd: Partial<GalleryTable> = { ...modificationStamp(p) };
        if (tags !== undefined || mode === 'put') upd.tags = JSON.stringify(tags ?? {});
        if (input.description !== undefined || mode === 'put') upd.description = input.description ?? null;
        await tx.updateTable('galleries').set(upd).where('id', '=', row.id).execute();
        return { gallery: toGallery({ ...row, ...upd }), created: false };
      }
      if (mode === 'patch') await this.requireGalleryRow(tx, sub, rg, name);
      const location = this.regions.require(input.location).name;
      const values: GalleryTable = {
        id: randomUUID(),
        subscription_id: group.subscriptionId,
        resource_group: group.name,
        resource_group_key: keyOf(group.name),
        name,
        name_key: keyOf(name),
        location,
        tags: JSON.stringify(tags ?? {}),
        provisioning_state: 'Succeeded',
        description: input.description ?? null,
        unique_name: `${group.subscriptionId.slice(0, 8)}-${name.toUpperCase()}`,
        ...creationStamp(p),
      };
      await tx.insertInto('galleries').values(values).execute();
      return { gallery: toGallery(values), created: true };
    });
  }

  async deleteGallery(sub: string, rg: string, name: string, pre?: Preconditions): Promise<boolean> {
    await this.groups.get(sub, rg);
    return this.db.transaction().execute(async (tx) => {
      const row = await this.galleryRow(tx, sub, rg, name, true);
      checkPreconditions(`Gallery '${name}'`, row?.etag, pre);
      if (!row) return false;
      const images = await tx.selectFrom('gallery_images').select('name').where('gallery_id', '=', row.id).orderBy('name_key').limit(11).execute();
      if (images.length) {
        const names = images
          .slice(0, 10)
          .map((i) => `'${i.name}'`)
          .join(', ');
        throw conflict(
          `Gallery '${row.name}' still contains image definition${images.length > 1 ? 's' : ''} ${names}${images.length > 10 ? ' and more' : ''}. Delete its image definitions (and their versions) first, then delete the gallery.`,
        );
      }
      await tx.deleteFrom('galleries').where('id', '=', row.id).execute();
      return true;
    });
  }

  // ---- image definitions ----

  private async imageRow(db: Db, galleryId: string, name: string, lock = false): Promise<GalleryImageTable | undefined> {
    const q = db.selectFrom('gallery_images').selectAll().where('gallery_id', '=', galleryId).where('name_key', '=', keyOf(name));
    return (lock ? forUpdate(db, q) : q).executeTakeFirst();
  }

  async requireImageRow(
    db: Db,
    sub: string,
    rg: string,
    gallery: string,
    name: string,
    parent = false,
  ): Promise<{ gallery: GalleryTable; image: GalleryImageTable }> {
    const g = await this.requireGalleryRow(db, sub, rg, gallery, true);
    const image = await this.imageRow(db, g.id, name);
    if (!image) {
      throw notFound(
        parent ? 'ParentResourceNotFound' : 'ResourceNotFound',
        `The Resource 'Microsoft.Compute/galleries/${g.name}/images/${name}' under resource group '${rg}' was not found.`,
      );
    }
    return { gallery: g, image };
  }

  /** An image definition's row by key (lab exports look up the image a lab came from). */
  async imageByKey(key: string): Promise<GalleryImageTable | undefined> {
    return this.db.selectFrom('gallery_images').selectAll().where('id', '=', key).executeTakeFirst();
  }

  async galleryByKey(key: string): Promise<GalleryTable | undefined> {
    return this.db.selectFrom('galleries').selectAll().where('id', '=', key).executeTakeFirst();
  }

  async getImage(sub: string, rg: string, gallery: string, name: string): Promise<GalleryImage> {
    const { gallery: g, image } = await this.requireImageRow(this.db, sub, rg, gallery, name);
    return toImage(image, g.name);
  }

  async listImages(sub: string, rg: string, gallery: string, after: string | undefined, limit: number): Promise<GalleryImage[]> {
    const g = await this.requireGalleryRow(this.db, sub, rg, gallery, true);
    let q = this.db.selectFrom('gallery_images').selectAll().where('gallery_id', '=', g.id);
    if (after) q = q.where('name_key', '>', after);
    return (await q.orderBy('name_key').limit(limit).execute()).map((r) => toImage(r, g.name));
  }

  async createOrUpdateImage(
    p: Principal,
    sub: string,
    rg: string,
    gallery: string,
    name: string,
    input: GalleryImageInput,
    mode: 'put' | 'patch',
    pre?: Preconditions,
  ): Promise<{ image: GalleryImage; created: boolean }> {
    checkName('image', name);
    const tags = input.tags === undefined ? undefined : checkTags(input.tags);
    return this.db.transaction().execute(async (tx) => {
      const g = await this.requireGalleryRow(tx, sub, rg, gallery, true);
      const row = await this.imageRow(tx, g.id, name, true);
      checkPreconditions(`Image definition '${name}'`, row?.etag, pre);
      const common = {
        description: input.description,
        eula: input.eula,
        privacy_statement_uri: input.privacyStatementUri,
        release_note_uri: input.releaseNoteUri,
        end_of_life_date: input.endOfLifeDate === undefined ? undefined : checkDate(input.endOfLifeDate, 'properties.endOfLifeDate'),
        recommended:
          input.recommended === undefined
            ? undefined
            : JSON.stringify({
                vCPUs: checkRange(input.recommended?.vCPUs, 'properties.recommended.vCPUs', 1024),
                memory: checkRange(input.recommended?.memory, 'properties.recommended.memory', 4 * 1024 * 1024),
              }),
      };
      if (row) {
        const before = toImage(row, g.name);
        if (input.location && this.regions.require(input.location).name !== row.location) throw immutable('location', row.location, input.location);
        const fixed: Array<[string, string | undefined, string]> = [
          ['osType', input.osType, before.osType],
          ['osState', input.osState, before.osState],
          ['hyperVGeneration', input.hyperVGeneration, before.hyperVGeneration],
          ['architecture', input.architecture, before.architecture],
          ['identifier.publisher', input.identifier?.publisher, before.identifier.publisher],
          ['identifier.offer', input.identifier?.offer, before.identifier.offer],
          ['identifier.sku', input.identifier?.sku, before.identifier.sku],
        ];
        for (const [field, wanted, current] of fixed) {
          if (wanted !== undefined && wanted !== null && wanted.toLowerCase() !== current.toLowerCase()) throw immutable(field, current, wanted);
        }
        if (input.purchasePlan !== undefined && JSON.stringify(input.purchasePlan ?? null) !== JSON.stringify(before.purchasePlan)) {
          throw immutable('purchasePlan', JSON.stringify(before.purchasePlan), JSON.stringify(input.purchasePlan));
        }
        const upd: Partial<GalleryImageTable> = { ...modificationStamp(p) };
        const put = mode === 'put';
        if (tags !== undefined || put) upd.tags = JSON.stringify(tags ?? {});
        if (common.description !== undefined || put) upd.description = common.description ?? null;
        if (common.eula !== undefined || put) upd.eula = common.eula ?? null;
        if (common.privacy_statement_uri !== undefined || put) upd.privacy_statement_uri = common.privacy_statement_uri ?? null;
        if (common.release_note_uri !== undefined || put) upd.release_note_uri = common.release_note_uri ?? null;
        if (common.end_of_life_date !== undefined || put) upd.end_of_life_date = common.end_of_life_date ?? null;
        if (common.recommended !== undefined || put) upd.recommended = common.recommended ?? '{}';
        if (input.disallowed !== undefined || put) upd.disallowed = JSON.stringify(input.disallowed ?? {});
        if (input.features !== undefined || put) upd.features = JSON.stringify(input.features ?? []);
        await tx.updateTable('gallery_images').set(upd).where('id', '=', row.id).execute();
        return { image: toImage({ ...row, ...upd }, g.name), created: false };
      }
      if (mode === 'patch') await this.requireImageRow(tx, sub, rg, gallery, name);
      if (input.location && this.regions.require(input.location).name !== g.location) {
        throw invalidParameter(
          `An image definition must be in its gallery's region '${g.location}'; the request says '${input.location}'. Replicate versions to other regions with publishingProfile.targetRegions instead.`,
          'location',
        );
      }
      const id = input.identifier ?? {};
      for (const k of ['publisher', 'offer', 'sku'] as const) {
        const v = id[k];
        if (!v || typeof v !== 'string' || v.length > 128 || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v)) {
          throw invalidParameter(
            `properties.identifier.${k} is ${v ? `'${v}', which is not valid` : 'missing'}: give 1-128 letters, digits, periods, hyphens or underscores (publisher, offer and sku together identify the image, like 'Contoso', 'LabImages', 'Ubuntu22').`,
            `properties.identifier.${k}`,
          );
        }
      }
      const identityKey = `${id.publisher}/${id.offer}/${id.sku}`.toLowerCase();
      const clash = await tx
        .selectFrom('gallery_images')
        .select('name')
        .where('gallery_id', '=', g.id)
        .where('identity_key', '=', identityKey)
        .executeTakeFirst();
      if (clash) {
        throw conflict(
          `Image definition '${clash.name}' in gallery '${g.name}' already uses publisher '${id.publisher}', offer '${id.offer}', sku '${id.sku}'. The identifier must be unique in a gallery: change one of the three.`,
          'properties.identifier',
          'GalleryImageIdentifierConflict',
        );
      }
      const values: GalleryImageTable = {
        id: randomUUID(),
        subscription_id: g.subscription_id,
        resource_group: g.resource_group,
        resource_group_key: g.resource_group_key,
        name,
        name_key: keyOf(name),
        location: g.location,
        tags: JSON.stringify(tags ?? {}),
        provisioning_state: 'Succeeded',
        gallery_id: g.id,
        os_type: pickEnum(input.osType, ['Linux', 'Windows'] as const, 'properties.osType'),
        os_state: pickEnum(input.osState, ['Generalized', 'Specialized'] as const, 'properties.osState'),
        hyper_v_generation: pickEnum(input.hyperVGeneration, ['V1', 'V2'] as const, 'properties.hyperVGeneration', 'V1'),
        architecture: pickEnum(input.architecture, ['x64', 'Arm64'] as const, 'properties.architecture', 'x64'),
        publisher: id.publisher as string,
        offer: id.offer as string,
        sku: id.sku as string,
        identity_key: identityKey,
        description: common.description ?? null,
        eula: common.eula ?? null,
        privacy_statement_uri: common.privacy_statement_uri ?? null,
        release_note_uri: common.release_note_uri ?? null,
        end_of_life_date: common.end_of_life_date ?? null,
        recommended: common.recommended ?? '{}',
        disallowed: JSON.stringify(input.disallowed ?? {}),
        features: JSON.stringify(input.features ?? []),
        purchase_plan: input.purchasePlan ? JSON.stringify(input.purchasePlan) : null,
        ...creationStamp(p),
      };
      await tx.insertInto('gallery_images').values(values).execute();
      return { image: toImage(values, g.name), created: true };
    });
  }

  async deleteImage(sub: string, rg: string, gallery: string, name: string, pre?: Preconditions): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const g = await this.requireGalleryRow(tx, sub, rg, gallery, true);
      const row = await this.imageRow(tx, g.id, name, true);
      checkPreconditions(`Image definition '${name}'`, row?.etag, pre);
      if (!row) return false;
      const versions = await tx
        .selectFrom('gallery_image_versions')
        .select('name')
        .where('image_id', '=', row.id)
        .orderBy('major')
        .orderBy('minor')
        .orderBy('patch')
        .limit(11)
        .execute();
      if (versions.length) {
        const names = versions
          .slice(0, 10)
          .map((v) => v.name)
          .join(', ');
        throw conflict(
          `Image definition '${row.name}' still has version${versions.length > 1 ? 's' : ''} ${names}${versions.length > 10 ? ' and more' : ''}. Delete its versions first, then delete the image definition.`,
        );
      }
      await tx.deleteFrom('gallery_images').where('id', '=', row.id).execute();
      return true;
    });
  }
}
