// Lab plans (lab accounts): where labs may run, their defaults, the one
// attached gallery, and which images creators may use. The image list is
// computed from the built-in gallery and the attached gallery each time it is
// read; only the admin's enable/disable choice is stored.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, Db, GalleryImageTable, GalleryImageVersionTable, GalleryTable, LabPlanTable } from '../db/schema.js';
import { conflict, forbidden, invalidParameter, notFound } from '../errors.js';
import { galleryArmId, labPlanArmId } from '../lib/arm-id.js';
import { nowIso } from '../lib/time.js';
import { type Gallery, type GalleryImageRecord, type GalleryRepository, galleryImageRowOf, galleryRowOf } from '../repositories/gallery.repository.js';
import { type ImageVersion, type ImageVersionRepository, imageVersionRowOf } from '../repositories/image-version.repository.js';
import type { LabRepository } from '../repositories/lab.repository.js';
import { type LabPlan, type LabPlanChange, type LabPlanRepository, labPlanRowOf, toLabPlan } from '../repositories/lab-plan.repository.js';
import type { AutoShutdownProfile, ConnectionProfile } from '../repositories/profiles.js';
import { BUILTIN_GALLERY, BUILTIN_GROUP } from './builtin-images.js';
import { checkName, checkPreconditions, checkTags, type Preconditions, type Principal, type RegionCatalog } from './common.js';
import type { ResourceGroupService } from './resource-group.service.js';

/** Largest OS disk Azure Lab Services offers to creators. */
export const MAX_LAB_IMAGE_GB = 128;

export type { LabPlan } from '../repositories/lab-plan.repository.js';
export type { AutoShutdownProfile, ConnectionProfile } from '../repositories/profiles.js';

export interface LabPlanInput {
  location?: string;
  tags?: unknown;
  properties?: {
    allowedRegions?: string[];
    defaultConnectionProfile?: Partial<ConnectionProfile>;
    defaultAutoShutdownProfile?: Partial<AutoShutdownProfile>;
    sharedGalleryId?: string | null;
    supportInfo?: Record<string, string> | null;
    linkedLmsInstance?: string | null;
  };
}

export type HiddenReason = 'Disabled' | 'NoVersion' | 'MultipleDisks' | 'TooLarge' | 'NotReplicatedToRegion';

/** An image as a lab plan offers it. */
export interface LabPlanImage {
  planKey: string;
  name: string;
  imageKey: string;
  /** The gallery, the image definition and its latest version as rows, for API code that still renders rows (it goes when that code renders the records below). */
  gallery: GalleryTable;
  image: GalleryImageTable;
  latest: GalleryImageVersionTable | undefined;
  galleryRecord: Gallery;
  imageRecord: GalleryImageRecord;
  /** The version a lab made from the image now gets. */
  latestVersion: ImageVersion | undefined;
  enabled: boolean;
  builtin: boolean;
  osDiskSizeGB: number | null;
  dataDiskCount: number;
  availableRegions: string[];
  hiddenReasons: HiddenReason[];
}

const ENABLE = ['Enabled', 'Disabled'];
const CONNECTION = ['Public', 'Private', 'None'];
const IDLE = ['None', 'UserAbsence', 'LowUsage'];
const GALLERY_ARM_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)$/i;

function pick(v: unknown, allowed: string[], field: string, fallback: string): string {
  if (v === undefined || v === null) return fallback;
  const hit = allowed.find((a) => a.toLowerCase() === String(v).toLowerCase());
  if (!hit) throw invalidParameter(`'${v}' is not valid for ${field}. Allowed values: ${allowed.join(', ')}.`, field);
  return hit;
}

const DURATION = /^(P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?|\d{1,4}:\d{2})$/;

export function checkConnectionProfile(c: Partial<ConnectionProfile> | undefined, field: string, base?: ConnectionProfile): ConnectionProfile {
  return {
    webSshAccess: pick(c?.webSshAccess, CONNECTION, `${field}.webSshAccess`, base?.webSshAccess ?? 'None'),
    webRdpAccess: pick(c?.webRdpAccess, CONNECTION, `${field}.webRdpAccess`, base?.webRdpAccess ?? 'None'),
    clientSshAccess: pick(c?.clientSshAccess, CONNECTION, `${field}.clientSshAccess`, base?.clientSshAccess ?? 'Public'),
    clientRdpAccess: pick(c?.clientRdpAccess, CONNECTION, `${field}.clientRdpAccess`, base?.clientRdpAccess ?? 'Public'),
  };
}

export function checkAutoShutdown(a: Partial<AutoShutdownProfile> | undefined, field: string, base?: AutoShutdownProfile): AutoShutdownProfile {
  const out: AutoShutdownProfile = {
    shutdownOnDisconnect: pick(a?.shutdownOnDisconnect, ENABLE, `${field}.shutdownOnDisconnect`, base?.shutdownOnDisconnect ?? 'Disabled'),
    shutdownWhenNotConnected: pick(a?.shutdownWhenNotConnected, ENABLE, `${field}.shutdownWhenNotConnected`, base?.shutdownWhenNotConnected ?? 'Disabled'),
    shutdownOnIdle: pick(a?.shutdownOnIdle, IDLE, `${field}.shutdownOnIdle`, base?.shutdownOnIdle ?? 'None'),
  };
  for (const k of ['disconnectDelay', 'noConnectDelay', 'idleDelay'] as const) {
    const v = a?.[k] ?? base?.[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !DURATION.test(v)) {
      throw invalidParameter(`${field}.${k} must be an ISO 8601 duration such as PT15M (or hh:mm); got '${v}'.`, `${field}.${k}`);
    }
    out[k] = v;
  }
  return out;
}

export class LabPlanService {
  constructor(
    readonly db: Kysely<Database>,
    private readonly records: LabPlanRepository,
    private readonly galleryRecords: GalleryRepository,
    private readonly versionRecords: ImageVersionRepository,
    private readonly labRecords: LabRepository,
    private readonly groups: ResourceGroupService,
    private readonly regions: RegionCatalog,
  ) {}

  private notFoundError(rg: string, name: string) {
    return notFound('ResourceNotFound', `The Resource 'Microsoft.LabServices/labPlans/${name}' under resource group '${rg}' was not found.`);
  }

  /** The plan, or the ARM 404. */
  async requirePlan(db: Db, sub: string, rg: string, name: string): Promise<LabPlan> {
    const plan = await this.records.byName(db, sub, rg, name);
    if (!plan) throw this.notFoundError(rg, name);
    return plan;
  }

  /** The plan as a row, for the API's routes of a plan's images until they take the record (`get`, `planImages`). */
  async requirePlanRow(db: Db, sub: string, rg: string, name: string): Promise<LabPlanTable> {
    return labPlanRowOf(await this.requirePlan(db, sub, rg, name));
  }

  /** A lab plan by its ARM id (as labs refer to it). */
  async byArmId(id: string, field: string): Promise<LabPlan> {
    const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.LabServices\/labPlans\/([^/]+)$/i.exec(id);
    const plan = m ? await this.records.byName(this.db, m[1] as string, m[2] as string, m[3] as string) : undefined;
    if (!plan) throw invalidParameter(`The lab plan '${id}' does not exist. Give the id of a lab plan, as GET .../labPlans lists them.`, field);
    return plan;
  }

  async get(sub: string, rg: string, name: string): Promise<LabPlan> {
    return this.requirePlan(this.db, sub, rg, name);
  }

  async list(sub: string, rg: string | undefined, after: string | undefined, limit: number): Promise<LabPlan[]> {
    if (rg !== undefined) await this.groups.get(sub, rg);
    return this.records.list({ sub, ...(rg !== undefined ? { rg } : {}), ...(after ? { after } : {}), limit });
  }

  private async checkGallery(id: string | null | undefined): Promise<string | null> {
    if (id === undefined || id === null || id === '') return null;
    const m = GALLERY_ARM_ID.exec(id);
    const field = 'properties.sharedGalleryId';
    if (!m) throw invalidParameter(`'${id}' is not a gallery id (/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/galleries/<name>).`, field);
    const g = await this.galleryRecords.galleryByName(this.db, m[1] as string, m[2] as string, m[3] as string);
    if (!g) throw invalidParameter(`The gallery '${id}' does not exist. Create it first, or check the id.`, field);
    return galleryArmId(g);
  }

  /** Creates or updates a lab plan; attaching or detaching its gallery is part of it (admins only, by route). */
  async createOrUpdate(
    p: Principal,
    sub: string,
    rg: string,
    name: string,
    input: LabPlanInput,
    mode: 'put' | 'patch',
    pre?: Preconditions,
  ): Promise<{ plan: LabPlan; created: boolean }> {
    checkName('labPlan', name);
    const tags = input.tags === undefined ? undefined : checkTags(input.tags);
    const props = input.properties ?? {};
    const gallery = props.sharedGalleryId === undefined ? undefined : await this.checkGallery(props.sharedGalleryId);
    const allowed = props.allowedRegions?.map((r, i) => this.regions.require(r, `properties.allowedRegions[${i}]`).name);
    return this.db.transaction().execute(async (tx) => {
      const row = await this.records.byName(tx, sub, rg, name, true);
      checkPreconditions(`Lab plan '${name}'`, row?.etag, pre);
      if (row) {
        if (input.location && this.regions.require(input.location).name !== row.location) {
          throw conflict(`Changing property 'location' is not allowed: lab plan ${name} is in '${row.location}'.`, 'location', 'PropertyChangeNotAllowed');
        }
        const cur = row;
        const change: LabPlanChange = {
          ...(tags !== undefined || mode === 'put' ? { tags: tags ?? {} } : {}),
          ...(allowed !== undefined || mode === 'put' ? { allowedRegions: allowed ?? [] } : {}),
          ...(gallery !== undefined || mode === 'put' ? { sharedGalleryId: gallery ?? null } : {}),
          defaultConnectionProfile: checkConnectionProfile(
            props.defaultConnectionProfile,
            'properties.defaultConnectionProfile',
            mode === 'patch' ? cur.defaultConnectionProfile : undefined,
          ),
          defaultAutoShutdownProfile: checkAutoShutdown(
            props.defaultAutoShutdownProfile,
            'properties.defaultAutoShutdownProfile',
            mode === 'patch' ? cur.defaultAutoShutdownProfile : undefined,
          ),
          ...(props.supportInfo !== undefined ? { supportInfo: props.supportInfo ? props.supportInfo : null } : {}),
          ...(props.linkedLmsInstance !== undefined ? { linkedLmsInstance: props.linkedLmsInstance } : {}),
        };
        return { plan: await this.records.modify(tx, row, p, change), created: false };
      }
      if (mode === 'patch') throw this.notFoundError(rg, name);
      const group = await this.groups.get(sub, rg, tx);
      const location = this.regions.require(input.location ?? group.location).name;
      const plan = await this.records.insert(tx, p, {
        key: randomUUID(),
        subscriptionId: sub,
        resourceGroup: group.name,
        name,
        location,
        tags: tags ?? {},
        allowedRegions: allowed ?? [],
        defaultConnectionProfile: checkConnectionProfile(props.defaultConnectionProfile, 'properties.defaultConnectionProfile'),
        defaultAutoShutdownProfile: checkAutoShutdown(props.defaultAutoShutdownProfile, 'properties.defaultAutoShutdownProfile'),
        sharedGalleryId: gallery ?? null,
        supportInfo: props.supportInfo ? props.supportInfo : null,
        linkedLmsInstance: props.linkedLmsInstance ?? null,
      });
      return { plan, created: true };
    });
  }

  async delete(sub: string, rg: string, name: string, pre?: Preconditions): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const row = await this.records.byName(tx, sub, rg, name, true);
      checkPreconditions(`Lab plan '${name}'`, row?.etag, pre);
      if (!row) return false;
      const labs = await this.labRecords.namesOnPlan(row.key, tx, 6);
      if (labs.length) {
        throw conflict(`Lab plan '${row.name}' still has labs: ${labs.join(', ')}. Delete them first; their VMs would lose their plan's settings.`);
      }
      await this.records.delete(tx, row.key);
      return true;
    });
  }

  // ---- images ----

  /** Every image a plan could offer: the built-in gallery's and the attached gallery's definitions, with why each is hidden. */
  async planImages(plan: LabPlan): Promise<LabPlanImage[]> {
    const galleries: { g: Gallery; builtin: boolean }[] = [];
    const builtin = await this.galleryRecords.galleryByName(this.db, plan.subscriptionId, BUILTIN_GROUP, BUILTIN_GALLERY);
    if (builtin) galleries.push({ g: builtin, builtin: true });
    if (plan.sharedGalleryId) {
      const m = GALLERY_ARM_ID.exec(plan.sharedGalleryId);
      const g = m ? await this.galleryRecords.galleryByName(this.db, m[1] as string, m[2] as string, m[3] as string) : undefined;
      if (g && g.key !== builtin?.key) galleries.push({ g, builtin: false });
    }
    const enabled = await this.records.imageStates(plan.key);
    const out = new Map<string, LabPlanImage>();
    // The attached gallery comes last and wins a name clash with a built-in image.
    for (const { g, builtin: isBuiltin } of galleries) {
      const galleryRow = galleryRowOf(g);
      for (const image of await this.galleryRecords.listImages(g)) {
        const latest = await this.versionRecords.latest(this.db, image);
        const storage = latest?.storage;
        const replication = latest?.replication ?? {};
        const availableRegions = Object.entries(replication)
          .filter(([, r]) => r.state === 'Completed')
          .map(([n]) => n);
        const isEnabled = enabled.get(image.key) === 'Enabled';
        const hidden: HiddenReason[] = [];
        if (!latest) hidden.push('NoVersion');
        if (storage && storage.dataDisks.length > 0) hidden.push('MultipleDisks');
        if (storage && storage.osDisk.sizeGB >= MAX_LAB_IMAGE_GB) hidden.push('TooLarge');
        if (latest && !availableRegions.includes(plan.location)) hidden.push('NotReplicatedToRegion');
        if (!isEnabled) hidden.push('Disabled');
        out.set(image.name.toLowerCase(), {
          planKey: plan.key,
          name: image.name,
          imageKey: image.key,
          gallery: galleryRow,
          image: galleryImageRowOf(image),
          latest: latest ? imageVersionRowOf(latest) : undefined,
          galleryRecord: g,
          imageRecord: image,
          latestVersion: latest,
          enabled: isEnabled,
          builtin: isBuiltin,
          osDiskSizeGB: storage?.osDisk.sizeGB ?? null,
          dataDiskCount: storage?.dataDisks.length ?? 0,
          availableRegions,
          hiddenReasons: hidden,
        });
      }
    }
    return [...out.values()];
  }

  /** One image of a plan, whatever its state (for reads and for enabling). */
  async planImage(plan: LabPlan, name: string): Promise<LabPlanImage> {
    const hit = (await this.planImages(plan)).find((i) => i.name.toLowerCase() === name.toLowerCase());
    if (!hit) {
      throw notFound(
        'ResourceNotFound',
        `Lab plan '${plan.name}' has no image '${name}'. Its images are the built-in ones and the image definitions of its attached gallery${plan.sharedGalleryId ? '' : ' (it has none: attach one with sharedGalleryId)'}.`,
      );
    }
    return hit;
  }

  /** Enables or disables an image for the plan's creators (admins only, by route). */
  async setPlanImageEnabled(p: Principal, plan: LabPlan, name: string, state: string | undefined): Promise<LabPlanImage> {
    const value = pick(state, ENABLE, 'properties.enabledState', 'Disabled');
    const img = await this.planImage(plan, name);
    await this.enable(this.db, plan.key, img.imageKey, value, p);
    return this.planImage(plan, name);
  }

  /** `planImages` for a plan given as a row (the API's routes, until they take the record). */
  async images(plan: LabPlanTable): Promise<LabPlanImage[]> {
    return this.planImages(toLabPlan(plan));
  }

  /** `planImage` for a plan given as a row (the API's routes, until they take the record). */
  async image(plan: LabPlanTable, name: string): Promise<LabPlanImage> {
    return this.planImage(toLabPlan(plan), name);
  }

  /** `setPlanImageEnabled` for a plan given as a row (the API's routes, until they take the record). */
  async setEnabled(p: Principal, plan: LabPlanTable, name: string, state: string | undefined): Promise<LabPlanImage> {
    return this.setPlanImageEnabled(p, toLabPlan(plan), name, state);
  }

  async enable(db: Db, planKey: string, imageKey: string, value: string, p: Principal): Promise<void> {
    await this.records.setImageState(db, planKey, imageKey, value, p, nowIso());
  }

  // ---- images by the plan's names, for the API ----

  private async planAndId(sub: string, rg: string, name: string): Promise<{ plan: LabPlan; planId: string }> {
    const plan = await this.requirePlan(this.db, sub, rg, name);
    return { plan, planId: labPlanArmId(plan) };
  }

  /** The images a caller sees: with includeHidden (admins only) every image and why it is hidden; else the offered ones, and for creators only the enabled ones. */
  async visibleImages(p: Principal, sub: string, rg: string, name: string, includeHidden: boolean): Promise<{ planId: string; images: LabPlanImage[] }> {
    LabPlanService.checkIncludeHidden(p, includeHidden);
    const { plan, planId } = await this.planAndId(sub, rg, name);
    // Azure lists every eligible image with its enabledState; creators see only the enabled ones.
    const images = (await this.planImages(plan)).filter(
      (i) => includeHidden || (i.hiddenReasons.every((r) => r === 'Disabled') && (p.role === 'admin' || i.enabled)),
    );
    return { planId, images };
  }

  /** One image of a plan by the plan's names. */
  async imageOf(sub: string, rg: string, name: string, image: string): Promise<{ planId: string; image: LabPlanImage }> {
    const { plan, planId } = await this.planAndId(sub, rg, name);
    return { planId, image: await this.planImage(plan, image) };
  }

  /** Enables or disables an image of a plan given by its names (admins only, by route). */
  async setImageEnabled(
    p: Principal,
    sub: string,
    rg: string,
    name: string,
    image: string,
    state: string | undefined,
  ): Promise<{ planId: string; image: LabPlanImage }> {
    const { plan, planId } = await this.planAndId(sub, rg, name);
    return { planId, image: await this.setPlanImageEnabled(p, plan, image, state) };
  }

  /** Explains in words why an image is not offered, for refusals. */
  static describeHidden(img: LabPlanImage, planName: string, region: string): string {
    const why = img.hiddenReasons.map((r) => {
      switch (r) {
        case 'Disabled':
          return `it is disabled in lab plan '${planName}' (an admin enables it in the plan's image list)`;
        case 'NoVersion':
          return 'it has no usable version yet';
        case 'MultipleDisks':
          return `its latest version has ${img.dataDiskCount + 1} disks, and labs take single-disk images only`;
        case 'TooLarge':
          return `its OS disk is ${img.osDiskSizeGB} GB, and labs take images under ${MAX_LAB_IMAGE_GB} GB`;
        case 'NotReplicatedToRegion':
          return `its latest version is not replicated to region '${region}' (it is in: ${img.availableRegions.join(', ') || 'no region'})`;
      }
      return r;
    });
    return `Image '${img.name}' cannot be used for a lab: ${why.join('; ')}.`;
  }

  /** Refuses non-admins that try to see hidden images. */
  static checkIncludeHidden(p: Principal, includeHidden: boolean): void {
    if (includeHidden && p.role !== 'admin') throw forbidden('Only admins can list the images a lab plan hides from creators, with the reasons.');
  }
}
