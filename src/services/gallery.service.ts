// Galleries and image definitions: metadata and the rules Azure Compute
// Gallery applies to them (names, unique identifiers, immutable fields,
// refusing to delete what still has content).
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, Db } from '../db/schema.js';
import { conflict, invalidParameter, LabforgeError, notFound } from '../errors.js';
import type {
  Gallery,
  GalleryChange,
  GalleryImage,
  GalleryImageChange,
  GalleryImageRecord,
  GalleryRepository,
  ResourceRange,
} from '../repositories/gallery.repository.js';
import type { ImageVersionRepository } from '../repositories/image-version.repository.js';
import { checkName, checkPreconditions, checkTags, type Preconditions, type Principal, type RegionCatalog } from './common.js';
import type { ResourceGroupService } from './resource-group.service.js';

export type { Gallery, GalleryImage, GalleryImageRecord, OsState, OsType, ResourceRange } from '../repositories/gallery.repository.js';

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
    private readonly records: GalleryRepository,
    private readonly versionRecords: ImageVersionRepository,
    private readonly groups: ResourceGroupService,
    private readonly regions: RegionCatalog,
  ) {}

  // ---- galleries ----

  /** The gallery, or the ARM 404 (ParentResourceNotFound when `parent`: the request was for something inside it). */
  async requireGallery(db: Db, sub: string, rg: string, name: string, parent = false): Promise<Gallery> {
    await this.groups.get(sub, rg, db);
    const g = await this.records.galleryByName(db, sub, rg, name);
    if (!g) {
      throw notFound(
        parent ? 'ParentResourceNotFound' : 'ResourceNotFound',
        `The Resource 'Microsoft.Compute/galleries/${name}' under resource group '${rg}' was not found.`,
      );
    }
    return g;
  }

  async getGallery(sub: string, rg: string, name: string): Promise<Gallery> {
    return this.requireGallery(this.db, sub, rg, name);
  }

  async listGalleries(sub: string, rg: string | undefined, after: string | undefined, limit: number): Promise<Gallery[]> {
    if (rg) await this.groups.get(sub, rg);
    else await this.groups.requireSubscription(sub);
    return this.records.listGalleries({ sub, ...(rg ? { rg } : {}), ...(after ? { after } : {}), limit });
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
      const row = await this.records.galleryByName(tx, sub, rg, name, true);
      checkPreconditions(`Gallery '${name}'`, row?.etag, pre);
      if (row) {
        if (input.location && this.regions.require(input.location).name !== row.location) {
          throw immutable('location', row.location, input.location);
        }
        const change: GalleryChange = {};
        if (tags !== undefined || mode === 'put') change.tags = tags ?? {};
        if (input.description !== undefined || mode === 'put') change.description = input.description ?? null;
        return { gallery: await this.records.modifyGallery(tx, row, p, change), created: false };
      }
      if (mode === 'patch') await this.requireGallery(tx, sub, rg, name);
      const location = this.regions.require(input.location).name;
      const gallery = await this.records.insertGallery(tx, p, {
        key: randomUUID(),
        subscriptionId: group.subscriptionId,
        resourceGroup: group.name,
        name,
        location,
        tags: tags ?? {},
        description: input.description ?? null,
        uniqueName: `${group.subscriptionId.slice(0, 8)}-${name.toUpperCase()}`,
      });
      return { gallery, created: true };
    });
  }

  async deleteGallery(sub: string, rg: string, name: string, pre?: Preconditions): Promise<boolean> {
    await this.groups.get(sub, rg);
    return this.db.transaction().execute(async (tx) => {
      const row = await this.records.galleryByName(tx, sub, rg, name, true);
      checkPreconditions(`Gallery '${name}'`, row?.etag, pre);
      if (!row) return false;
      const images = await this.records.imageNames(tx, row.key, 11);
      if (images.length) {
        const names = images
          .slice(0, 10)
          .map((i) => `'${i}'`)
          .join(', ');
        throw conflict(
          `Gallery '${row.name}' still contains image definition${images.length > 1 ? 's' : ''} ${names}${images.length > 10 ? ' and more' : ''}. Delete its image definitions (and their versions) first, then delete the gallery.`,
        );
      }
      await this.records.deleteGallery(tx, row.key);
      return true;
    });
  }

  // ---- image definitions ----

  /** The image definition with its gallery, or the ARM 404 (ParentResourceNotFound when `parent`). */
  async requireImage(db: Db, sub: string, rg: string, gallery: string, name: string, parent = false): Promise<{ gallery: Gallery; image: GalleryImageRecord }> {
    const g = await this.requireGallery(db, sub, rg, gallery, true);
    const image = await this.records.imageByName(db, g, name);
    if (!image) {
      throw notFound(
        parent ? 'ParentResourceNotFound' : 'ResourceNotFound',
        `The Resource 'Microsoft.Compute/galleries/${g.name}/images/${name}' under resource group '${rg}' was not found.`,
      );
    }
    return { gallery: g, image };
  }

  /** An image definition by key (lab exports look up the image a lab came from). */
  async imageByKey(key: string): Promise<GalleryImageRecord | undefined> {
    return this.records.imageByKey(key);
  }

  async galleryByKey(key: string): Promise<Gallery | undefined> {
    return this.records.galleryByKey(key);
  }

  async getImage(sub: string, rg: string, gallery: string, name: string): Promise<GalleryImage> {
    return (await this.requireImage(this.db, sub, rg, gallery, name)).image;
  }

  async listImages(sub: string, rg: string, gallery: string, after: string | undefined, limit: number): Promise<GalleryImage[]> {
    const g = await this.requireGallery(this.db, sub, rg, gallery, true);
    return this.records.listImages(g, { ...(after ? { after } : {}), limit });
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
      const g = await this.requireGallery(tx, sub, rg, gallery, true);
      const row = await this.records.imageByName(tx, g, name, true);
      checkPreconditions(`Image definition '${name}'`, row?.etag, pre);
      const common = {
        description: input.description,
        eula: input.eula,
        privacyStatementUri: input.privacyStatementUri,
        releaseNoteUri: input.releaseNoteUri,
        endOfLifeDate: input.endOfLifeDate === undefined ? undefined : checkDate(input.endOfLifeDate, 'properties.endOfLifeDate'),
        recommended:
          input.recommended === undefined
            ? undefined
            : {
                vCPUs: checkRange(input.recommended?.vCPUs, 'properties.recommended.vCPUs', 1024),
                memory: checkRange(input.recommended?.memory, 'properties.recommended.memory', 4 * 1024 * 1024),
              },
      };
      if (row) {
        const before = row;
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
        const change: GalleryImageChange = {};
        const put = mode === 'put';
        if (tags !== undefined || put) change.tags = tags ?? {};
        if (common.description !== undefined || put) change.description = common.description ?? null;
        if (common.eula !== undefined || put) change.eula = common.eula ?? null;
        if (common.privacyStatementUri !== undefined || put) change.privacyStatementUri = common.privacyStatementUri ?? null;
        if (common.releaseNoteUri !== undefined || put) change.releaseNoteUri = common.releaseNoteUri ?? null;
        if (common.endOfLifeDate !== undefined || put) change.endOfLifeDate = common.endOfLifeDate ?? null;
        if (common.recommended !== undefined || put) change.recommended = common.recommended ?? {};
        if (input.disallowed !== undefined || put) change.disallowed = input.disallowed ?? {};
        if (input.features !== undefined || put) change.features = input.features ?? [];
        return { image: await this.records.modifyImage(tx, row, p, change), created: false };
      }
      if (mode === 'patch') await this.requireImage(tx, sub, rg, gallery, name);
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
      const identifier = { publisher: id.publisher as string, offer: id.offer as string, sku: id.sku as string };
      const clash = await this.records.imageNameWithIdentifier(tx, g.key, identifier);
      if (clash) {
        throw conflict(
          `Image definition '${clash}' in gallery '${g.name}' already uses publisher '${id.publisher}', offer '${id.offer}', sku '${id.sku}'. The identifier must be unique in a gallery: change one of the three.`,
          'properties.identifier',
          'GalleryImageIdentifierConflict',
        );
      }
      const image = await this.records.insertImage(tx, p, g, {
        key: randomUUID(),
        name,
        tags: tags ?? {},
        osType: pickEnum(input.osType, ['Linux', 'Windows'] as const, 'properties.osType'),
        osState: pickEnum(input.osState, ['Generalized', 'Specialized'] as const, 'properties.osState'),
        hyperVGeneration: pickEnum(input.hyperVGeneration, ['V1', 'V2'] as const, 'properties.hyperVGeneration', 'V1'),
        architecture: pickEnum(input.architecture, ['x64', 'Arm64'] as const, 'properties.architecture', 'x64'),
        identifier,
        description: common.description ?? null,
        eula: common.eula ?? null,
        privacyStatementUri: common.privacyStatementUri ?? null,
        releaseNoteUri: common.releaseNoteUri ?? null,
        endOfLifeDate: common.endOfLifeDate ?? null,
        recommended: common.recommended ?? {},
        disallowed: input.disallowed ?? {},
        features: input.features ?? [],
        purchasePlan: input.purchasePlan ? input.purchasePlan : null,
      });
      return { image, created: true };
    });
  }

  async deleteImage(sub: string, rg: string, gallery: string, name: string, pre?: Preconditions): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const g = await this.requireGallery(tx, sub, rg, gallery, true);
      const row = await this.records.imageByName(tx, g, name, true);
      checkPreconditions(`Image definition '${name}'`, row?.etag, pre);
      if (!row) return false;
      const versions = await this.versionRecords.names(tx, row.key, 11);
      if (versions.length) {
        const names = versions.slice(0, 10).join(', ');
        throw conflict(
          `Image definition '${row.name}' still has version${versions.length > 1 ? 's' : ''} ${names}${versions.length > 10 ? ' and more' : ''}. Delete its versions first, then delete the image definition.`,
        );
      }
      await this.records.deleteImage(tx, row.key);
      return true;
    });
  }
}
