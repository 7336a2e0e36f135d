// The `lab_plans` and `lab_plan_images` tables: lab plans with their default
// profiles (JSON columns) and the admin's enable/disable choice per image.
// Every query on the two tables is here, with the mapping of a row to
// `LabPlan`. The lab plan service is the only writer.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, Db, LabPlanTable } from '../db/schema.js';
import type { Principal } from '../lib/principal.js';
import { creationStamp, forUpdate, keyOf, modificationStamp, type ResourceMeta, resourceColumns, resourceMeta } from './common.js';
import type { AutoShutdownProfile, ConnectionProfile } from './profiles.js';

export interface LabPlan extends ResourceMeta {
  allowedRegions: string[];
  defaultConnectionProfile: ConnectionProfile;
  defaultAutoShutdownProfile: AutoShutdownProfile;
  sharedGalleryId: string | null;
  supportInfo: Record<string, string> | null;
  linkedLmsInstance: string | null;
}

/** What a new lab plan is made with. */
export type NewLabPlan = Omit<LabPlan, Exclude<keyof ResourceMeta, 'key' | 'subscriptionId' | 'resourceGroup' | 'name' | 'location' | 'tags'>>;

export interface LabPlanChange {
  tags?: Record<string, string>;
  allowedRegions?: string[];
  defaultConnectionProfile?: ConnectionProfile;
  defaultAutoShutdownProfile?: AutoShutdownProfile;
  sharedGalleryId?: string | null;
  supportInfo?: Record<string, string> | null;
  linkedLmsInstance?: string | null;
}

export const toLabPlan = (r: LabPlanTable): LabPlan =>
  Object.assign(resourceMeta(r), {
    allowedRegions: JSON.parse(r.allowed_regions) as string[],
    defaultConnectionProfile: JSON.parse(r.default_connection_profile) as ConnectionProfile,
    defaultAutoShutdownProfile: JSON.parse(r.default_auto_shutdown_profile) as AutoShutdownProfile,
    sharedGalleryId: r.shared_gallery_id,
    supportInfo: r.support_info ? (JSON.parse(r.support_info) as Record<string, string>) : null,
    linkedLmsInstance: r.linked_lms_instance,
  });

/**
 * The row of a lab plan, from its record. Only for API code that still reads
 * rows (the routes of a plan's images); it goes when that code reads records.
 */
export const labPlanRowOf = (p: LabPlan): LabPlanTable => ({
  ...resourceColumns(p),
  allowed_regions: JSON.stringify(p.allowedRegions),
  default_connection_profile: JSON.stringify(p.defaultConnectionProfile),
  default_auto_shutdown_profile: JSON.stringify(p.defaultAutoShutdownProfile),
  shared_gallery_id: p.sharedGalleryId,
  support_info: p.supportInfo ? JSON.stringify(p.supportInfo) : null,
  linked_lms_instance: p.linkedLmsInstance,
});

function toColumns(c: LabPlanChange): Partial<LabPlanTable> {
  const out: Partial<LabPlanTable> = {};
  if (c.tags !== undefined) out.tags = JSON.stringify(c.tags);
  if (c.allowedRegions !== undefined) out.allowed_regions = JSON.stringify(c.allowedRegions);
  if (c.sharedGalleryId !== undefined) out.shared_gallery_id = c.sharedGalleryId;
  if (c.defaultConnectionProfile !== undefined) out.default_connection_profile = JSON.stringify(c.defaultConnectionProfile);
  if (c.defaultAutoShutdownProfile !== undefined) out.default_auto_shutdown_profile = JSON.stringify(c.defaultAutoShutdownProfile);
  if (c.supportInfo !== undefined) out.support_info = c.supportInfo ? JSON.stringify(c.supportInfo) : null;
  if (c.linkedLmsInstance !== undefined) out.linked_lms_instance = c.linkedLmsInstance;
  return out;
}

export class LabPlanRepository {
  constructor(readonly db: Kysely<Database>) {}

  /** A plan by resource group and name; `lock` holds the row to the transaction's end. */
  async byName(db: Db, sub: string, rg: string, name: string, lock = false): Promise<LabPlan | undefined> {
    const q = db
      .selectFrom('lab_plans')
      .selectAll()
      .where('subscription_id', '=', sub.toLowerCase())
      .where('resource_group_key', '=', keyOf(rg))
      .where('name_key', '=', keyOf(name));
    const r = await (lock ? forUpdate(db, q) : q).executeTakeFirst();
    return r ? toLabPlan(r) : undefined;
  }

  /** Plans of a subscription (or of one group) by key order, for paging. */
  async list(q: { sub: string; rg?: string; after?: string; limit: number }): Promise<LabPlan[]> {
    let s = this.db.selectFrom('lab_plans').selectAll().where('subscription_id', '=', q.sub.toLowerCase());
    if (q.rg !== undefined) s = s.where('resource_group_key', '=', keyOf(q.rg));
    if (q.after) s = s.where('id', '>', q.after);
    return (await s.orderBy('id').limit(q.limit).execute()).map(toLabPlan);
  }

  async insert(db: Db, by: Principal, p: NewLabPlan): Promise<LabPlan> {
    const row: LabPlanTable = {
      id: p.key,
      subscription_id: p.subscriptionId.toLowerCase(),
      resource_group: p.resourceGroup,
      resource_group_key: keyOf(p.resourceGroup),
      name: p.name,
      name_key: keyOf(p.name),
      location: p.location,
      tags: JSON.stringify(p.tags),
      provisioning_state: 'Succeeded',
      allowed_regions: JSON.stringify(p.allowedRegions),
      default_connection_profile: JSON.stringify(p.defaultConnectionProfile),
      default_auto_shutdown_profile: JSON.stringify(p.defaultAutoShutdownProfile),
      shared_gallery_id: p.sharedGalleryId,
      support_info: p.supportInfo ? JSON.stringify(p.supportInfo) : null,
      linked_lms_instance: p.linkedLmsInstance,
      ...creationStamp(by),
    };
    await db.insertInto('lab_plans').values(row).execute();
    return toLabPlan(row);
  }

  /** A change by a person, with a new ETag; returns the plan as it is now. */
  async modify(db: Db, current: LabPlan, by: Principal, change: LabPlanChange): Promise<LabPlan> {
    const upd = { ...toColumns(change), ...modificationStamp(by) };
    await db.updateTable('lab_plans').set(upd).where('id', '=', current.key).execute();
    return toLabPlan({ ...labPlanRowOf(current), ...upd });
  }

  /** Deletes a plan and its image choices. */
  async delete(db: Db, key: string): Promise<void> {
    await db.deleteFrom('lab_plan_images').where('lab_plan_id', '=', key).execute();
    await db.deleteFrom('lab_plans').where('id', '=', key).execute();
  }

  // ---- the admin's choice per image ----

  /** The enabled state the plan's admin chose per image definition (by the image's key). */
  async imageStates(planKey: string, db: Db = this.db): Promise<Map<string, string>> {
    const rows = await db.selectFrom('lab_plan_images').selectAll().where('lab_plan_id', '=', planKey).execute();
    return new Map(rows.map((r) => [r.image_id, r.enabled_state]));
  }

  /** Records the enabled state of an image definition for a plan. */
  async setImageState(db: Db, planKey: string, imageKey: string, state: string, by: Principal, at: string): Promise<void> {
    const existing = await db.selectFrom('lab_plan_images').select('id').where('lab_plan_id', '=', planKey).where('image_id', '=', imageKey).executeTakeFirst();
    if (existing) {
      await db.updateTable('lab_plan_images').set({ enabled_state: state, modified_at: at, modified_by: by.subject }).where('id', '=', existing.id).execute();
    } else {
      await db
        .insertInto('lab_plan_images')
        .values({ id: randomUUID(), lab_plan_id: planKey, image_id: imageKey, enabled_state: state, modified_at: at, modified_by: by.subject })
        .execute();
    }
  }
}
