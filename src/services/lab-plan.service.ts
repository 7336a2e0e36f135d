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
import type { AutoShutdownProfile, ConnectionProfile } from '../repositories/profiles.js';
import { BUILTIN_GALLERY, BUILTIN_GROUP } from './builtin-images.js';
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
import type { ImageVersionService, RegionReplication, VersionStorage } from './image-version.service.js';
import type { ResourceGroupService } from './resource-group.service.js';

/** Largest OS disk Azure Lab Services offers to creators. */
export const MAX_LAB_IMAGE_GB = 128;

export type { AutoShutdownProfile, ConnectionProfile } from '../repositories/profiles.js';

export interface LabPlan extends ResourceMeta {
  allowedRegions: string[];
  defaultConnectionProfile: ConnectionProfile;
  defaultAutoShutdownProfile: AutoShutdownProfile;
  sharedGalleryId: string | null;
  supportInfo: Record<string, string> | null;
  linkedLmsInstance: string | null;
}

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
  gallery: GalleryTable;
  image: GalleryImageTable;
  latest: GalleryImageVersionTable | undefined;
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

const toPlan = (r: LabPlanTable): LabPlan =>
  Object.assign(resourceMeta(r), {
    allowedRegions: JSON.parse(r.allowed_regions) as string[],
    defaultConnectionProfile: JSON.parse(r.default_connection_profile) as ConnectionProfile,
    defaultAutoShutdownProfile: JSON.parse(r.default_auto_shutdown_profile) as AutoShutdownProfile,
    sharedGalleryId: r.shared_gallery_id,
    supportInfo: r.support_info ? (JSON.parse(r.support_info) as Record<string, string>) : null,
    linkedLmsInstance: r.linked_lms_instance,
  });

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
    private readonly groups: ResourceGroupService,
    private readonly versions: ImageVersionService,
    private readonly regions: RegionCatalog,
  ) {}

  private async planRow(db: Db, sub: string, rg: string, name: string, lock = false) {
    const q = db
      .selectFrom('lab_plans')
      .selectAll()
      .where('subscription_id', '=', sub.toLowerCase())
      .where('resource_group_key', '=', keyOf(rg))
      .where('name_key', '=', keyOf(name));
    return (lock ? forUpdate(db, q) : q).executeTakeFirst();
  }

  private notFoundError(rg: string, name: string) {
    return notFound('ResourceNotFound', `The Resource 'Microsoft.LabServices/labPlans/${name}' under resource group '${rg}' was not found.`);
  }

  async requirePlanRow(db: Db, sub: string, rg: string, name: string): Promise<LabPlanTable> {
    const r = await this.planRow(db, sub, rg, name);
    if (!r) throw this.notFoundError(rg, name);
    return r;
  }

  /** A lab plan by its ARM id (as labs refer to it). */
  async byArmId(id: string, field: string): Promise<LabPlanTable> {
    const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.LabServices\/labPlans\/([^/]+)$/i.exec(id);
    const r = m ? await this.planRow(this.db, m[1] as string, m[2] as string, m[3] as string) : undefined;
    if (!r) throw invalidParameter(`The lab plan '${id}' does not exist. Give the id of a lab plan, as GET .../labPlans lists them.`, field);
    return r;
  }

  async get(sub: string, rg: string, name: string): Promise<LabPlan> {
    return toPlan(await this.requirePlanRow(this.db, sub, rg, name));
  }

  async list(sub: string, rg: string | undefined, after: string | undefined, limit: number): Promise<LabPlan[]> {
    let q = this.db.selectFrom('lab_plans').selectAll().where('subscription_id', '=', sub.toLowerCase());
    if (rg !== undefined) {
      await this.groups.get(sub, rg);
      q = q.where('resource_group_key', '=', keyOf(rg));
    }
    if (after) q = q.where('id', '>', after);
    return (await q.orderBy('id').limit(limit).execute()).map(toPlan);
  }

  private async checkGallery(id: string | null | undefined): Promise<string | null> {
    if (id === undefined || id === null || id === '') return null;
    const m = GALLERY_ARM_ID.exec(id);
    const field = 'properties.sharedGalleryId';
    if (!m) throw invalidParameter(`'${id}' is not a gallery id (/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/galleries/<name>).`, field);
    const g = await this.db
      .selectFrom('galleries')
      .selectAll()
      .where('subscription_id', '=', (m[1] as string).toLowerCase())
      .where('resource_group_key', '=', keyOf(m[2] as string))
      .where('name_key', '=', keyOf(m[3] as string))
      .executeTakeFirst();
    if (!g) throw invalidParameter(`The gallery '${id}' does not exist. Create it first, or check the id.`, field);
    return galleryArmId(resourceMeta(g));
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
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(name)) {
      throw invalidParameter(
        `The lab plan name '${name}' is not valid: use 1-100 letters, digits, '-', '_' or '.', starting with a letter or digit.`,
        'labPlanName',
      );
    }
    const tags = input.tags === undefined ? undefined : checkTags(input.tags);
    const props = input.properties ?? {};
    const gallery = props.sharedGalleryId === undefined ? undefined : await this.checkGallery(props.sharedGalleryId);
    const allowed = props.allowedRegions?.map((r, i) => this.regions.require(r, `properties.allowedRegions[${i}]`).name);
    return this.db.transaction().execute(async (tx) => {
      const row = await this.planRow(tx, sub, rg, name, true);
      checkPreconditions(`Lab plan '${name}'`, row?.etag, pre);
      if (row) {
        if (input.location && this.regions.require(input.location).name !== row.location) {
          throw conflict(`Changing property 'location' is not allowed: lab plan ${name} is in '${row.location}'.`, 'location', 'PropertyChangeNotAllowed');
        }
        const cur = toPlan(row);
        const upd: Partial<LabPlanTable> = {
          ...modificationStamp(p),
          ...(tags !== undefined || mode === 'put' ? { tags: JSON.stringify(tags ?? {}) } : {}),
          ...(allowed !== undefined || mode === 'put' ? { allowed_regions: JSON.stringify(allowed ?? []) } : {}),
          ...(gallery !== undefined || mode === 'put' ? { shared_gallery_id: gallery ?? null } : {}),
          default_connection_profile: JSON.stringify(
            checkConnectionProfile(
              props.defaultConnectionProfile,
              'properties.defaultConnectionProfile',
              mode === 'patch' ? cur.defaultConnectionProfile : undefined,
            ),
          ),
          default_auto_shutdown_profile: JSON.stringify(
            checkAutoShutdown(
              props.defaultAutoShutdownProfile,
              'properties.defaultAutoShutdownProfile',
              mode === 'patch' ? cur.defaultAutoShutdownProfile : undefined,
            ),
          ),
          ...(props.supportInfo !== undefined ? { support_info: props.supportInfo ? JSON.stringify(props.supportInfo) : null } : {}),
          ...(props.linkedLmsInstance !== undefined ? { linked_lms_instance: props.linkedLmsInstance } : {}),
        };
        await tx.updateTable('lab_plans').set(upd).where('id', '=', row.id).execute();
        return { plan: toPlan({ ...row, ...upd }), created: false };
      }
      if (mode === 'patch') throw this.notFoundError(rg, name);
      const group = await this.groups.get(sub, rg, tx as Kysely<Database>);
      const location = this.regions.require(input.location ?? group.location).name;
      const values: LabPlanTable = {
        id: randomUUID(),
        subscription_id: sub.toLowerCase(),
        resource_group: group.name,
        resource_group_key: keyOf(group.name),
        name,
        name_key: keyOf(name),
        location,
        tags: JSON.stringify(tags ?? {}),
        provisioning_state: 'Succeeded',
        allowed_regions: JSON.stringify(allowed ?? []),
        default_connection_profile: JSON.stringify(checkConnectionProfile(props.defaultConnectionProfile, 'properties.defaultConnectionProfile')),
        default_auto_shutdown_profile: JSON.stringify(checkAutoShutdown(props.defaultAutoShutdownProfile, 'properties.defaultAutoShutdownProfile')),
        shared_gallery_id: gallery ?? null,
        support_info: props.supportInfo ? JSON.stringify(props.supportInfo) : null,
        linked_lms_instance: props.linkedLmsInstance ?? null,
        ...creationStamp(p),
      };
      await tx.insertInto('lab_plans').values(values).execute();
      return { plan: toPlan(values), created: true };
    });
  }

  async delete(sub: string, rg: string, name: string, pre?: Preconditions): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const row = await this.planRow(tx, sub, rg, name, true);
      checkPreconditions(`Lab plan '${name}'`, row?.etag, pre);
      if (!row) return false;
      const labs = await tx.selectFrom('labs').select('name').where('lab_plan_id', '=', row.id).limit(6).execute();
      if (labs.length) {
        throw conflict(
          `Lab plan '${row.name}' still has labs: ${labs.map((l) => l.name).join(', ')}. Delete them first; their VMs would lose their plan's settings.`,
        );
      }
      await tx.deleteFrom('lab_plan_images').where('lab_plan_id', '=', row.id).execute();
      await tx.deleteFrom('lab_plans').where('id', '=', row.id).execute();
      return true;
    });
  }

  // ---- images ----

  /** Every image a plan could offer: the built-in gallery's and the attached gallery's definitions, with why each is hidden. */
  async images(plan: LabPlanTable): Promise<LabPlanImage[]> {
    const galleries: { g: GalleryTable; builtin: boolean }[] = [];
    const builtin = await this.db
      .selectFrom('galleries')
      .selectAll()
      .where('subscription_id', '=', plan.subscription_id)
      .where('resource_group_key', '=', keyOf(BUILTIN_GROUP))
      .where('name_key', '=', keyOf(BUILTIN_GALLERY))
      .executeTakeFirst();
    if (builtin) galleries.push({ g: builtin, builtin: true });
    if (plan.shared_gallery_id) {
      const m = GALLERY_ARM_ID.exec(plan.shared_gallery_id);
      const g = m
        ? await this.db
            .selectFrom('galleries')
            .selectAll()
            .where('subscription_id', '=', (m[1] as string).toLowerCase())
            .where('resource_group_key', '=', keyOf(m[2] as string))
            .where('name_key', '=', keyOf(m[3] as string))
            .executeTakeFirst()
        : undefined;
      if (g && g.id !== builtin?.id) galleries.push({ g, builtin: false });
    }
    const enabled = new Map(
      (await this.db.selectFrom('lab_plan_images').selectAll().where('lab_plan_id', '=', plan.id).execute()).map((r) => [r.image_id, r.enabled_state]),
    );
    const out = new Map<string, LabPlanImage>();
    // The attached gallery comes last and wins a name clash with a built-in image.
    for (const { g, builtin: isBuiltin } of galleries) {
      const defs = await this.db.selectFrom('gallery_images').selectAll().where('gallery_id', '=', g.id).orderBy('name_key').execute();
      for (const image of defs) {
        const latest = await this.versions.latest(this.db, image.id);
        const storage = latest ? (JSON.parse(latest.storage_profile) as VersionStorage) : undefined;
        const replication = latest ? (JSON.parse(latest.replication) as Record<string, RegionReplication>) : {};
        const availableRegions = Object.entries(replication)
          .filter(([, r]) => r.state === 'Completed')
          .map(([n]) => n);
        const isEnabled = enabled.get(image.id) === 'Enabled';
        const hidden: HiddenReason[] = [];
        if (!latest) hidden.push('NoVersion');
        if (storage && storage.dataDisks.length > 0) hidden.push('MultipleDisks');
        if (storage && storage.osDisk.sizeGB >= MAX_LAB_IMAGE_GB) hidden.push('TooLarge');
        if (latest && !availableRegions.includes(plan.location)) hidden.push('NotReplicatedToRegion');
        if (!isEnabled) hidden.push('Disabled');
        out.set(image.name_key, {
          planKey: plan.id,
          name: image.name,
          imageKey: image.id,
          gallery: g,
          image,
          latest,
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
  async image(plan: LabPlanTable, name: string): Promise<LabPlanImage> {
    const hit = (await this.images(plan)).find((i) => i.name.toLowerCase() === name.toLowerCase());
    if (!hit) {
      throw notFound(
        'ResourceNotFound',
        `Lab plan '${plan.name}' has no image '${name}'. Its images are the built-in ones and the image definitions of its attached gallery${plan.shared_gallery_id ? '' : ' (it has none: attach one with sharedGalleryId)'}.`,
      );
    }
    return hit;
  }

  /** Enables or disables an image for the plan's creators (admins only, by route). */
  async setEnabled(p: Principal, plan: LabPlanTable, name: string, state: string | undefined): Promise<LabPlanImage> {
    const value = pick(state, ENABLE, 'properties.enabledState', 'Disabled');
    const img = await this.image(plan, name);
    await this.enable(this.db, plan.id, img.imageKey, value, p);
    return this.image(plan, name);
  }

  async enable(db: Db, planKey: string, imageKey: string, value: string, p: Principal): Promise<void> {
    const existing = await db.selectFrom('lab_plan_images').select('id').where('lab_plan_id', '=', planKey).where('image_id', '=', imageKey).executeTakeFirst();
    if (existing) {
      await db
        .updateTable('lab_plan_images')
        .set({ enabled_state: value, modified_at: nowIso(), modified_by: p.subject })
        .where('id', '=', existing.id)
        .execute();
    } else {
      await db
        .insertInto('lab_plan_images')
        .values({ id: randomUUID(), lab_plan_id: planKey, image_id: imageKey, enabled_state: value, modified_at: nowIso(), modified_by: p.subject })
        .execute();
    }
  }

  // ---- images by the plan's names, for the API ----

  private async planAndId(sub: string, rg: string, name: string): Promise<{ plan: LabPlanTable; planId: string }> {
    const plan = await this.requirePlanRow(this.db, sub, rg, name);
    return { plan, planId: labPlanArmId({ subscriptionId: plan.subscription_id, resourceGroup: plan.resource_group, name: plan.name }) };
  }

  /** The images a caller sees: with includeHidden (admins only) every image and why it is hidden; else the offered ones, and for creators only the enabled ones. */
  async visibleImages(p: Principal, sub: string, rg: string, name: string, includeHidden: boolean): Promise<{ planId: string; images: LabPlanImage[] }> {
    LabPlanService.checkIncludeHidden(p, includeHidden);
    const { plan, planId } = await this.planAndId(sub, rg, name);
    // Azure lists every eligible image with its enabledState; creators see only the enabled ones.
    const images = (await this.images(plan)).filter(
      (i) => includeHidden || (i.hiddenReasons.every((r) => r === 'Disabled') && (p.role === 'admin' || i.enabled)),
    );
    return { planId, images };
  }

  /** One image of a plan by the plan's names. */
  async imageOf(sub: string, rg: string, name: string, image: string): Promise<{ planId: string; image: LabPlanImage }> {
    const { plan, planId } = await this.planAndId(sub, rg, name);
    return { planId, image: await this.image(plan, image) };
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
    return { planId, image: await this.setEnabled(p, plan, image, state) };
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
