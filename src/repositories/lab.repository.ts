// The `labs` and `lab_users` tables: a lab with its profiles (JSON columns),
// what it was made from and published on, and the people in it. Every query
// on the two tables is here, with the mapping of rows to `LabRecord` and
// `LabUserRecord`. The lab services are the only writers.
import type { Kysely } from 'kysely';
import type { Database, Db, LabTable, LabUserTable } from '../db/schema.js';
import { labPlanArmId } from '../lib/arm-id.js';
import type { Principal } from '../lib/principal.js';
import { nowIso } from '../lib/time.js';
import { creationStamp, forUpdate, keyOf, modificationStamp, newEtag, type ResourceMeta, resourceMeta } from './common.js';
import type { AutoShutdownProfile, ConnectionProfile } from './profiles.js';

export type LabState = 'Draft' | 'Publishing' | 'Scaling' | 'Syncing' | 'Published';

export interface LabVmProfile {
  createOption: 'TemplateVM' | 'Image';
  imageReference: { id: string };
  /** The ARM id of the image version the lab was made from. */
  exactVersion: string;
  osType: string;
  osState: string;
  sku: { name: string; capacity: number };
  adminUser: { username: string } | null;
  nonAdminUser: { username: string } | null;
  usageQuota: string;
  useSharedPassword: string;
  installGpuDrivers: string;
}

export interface SecurityProfile {
  registrationCode: string;
  openAccess: string;
}

/** A lab as callers see it. */
export interface Lab extends ResourceMeta {
  labPlanId: string | null;
  title: string;
  description: string | null;
  state: LabState;
  vmProfile: LabVmProfile;
  autoShutdownProfile: AutoShutdownProfile;
  connectionProfile: ConnectionProfile;
  securityProfile: SecurityProfile;
  exportOperationId: string | null;
}

/** A lab with what only the server uses: its plan's key, the admin password hash, the images it was made from and published on. */
export interface LabRecord extends Lab {
  labPlanKey: string | null;
  adminPasswordHash: string | null;
  /** The gallery image definition the lab was made from. */
  sourceImageKey: string | null;
  /** The version the lab was made from. */
  versionKey: string;
  /** The manifest the student VMs of the last publish are built on. */
  publishedImage: string | null;
  /** The image definition the template was last exported to. */
  exportedImageKey: string | null;
}

/** What a new lab is made with. */
export type NewLab = Omit<LabRecord, keyof ResourceMeta | 'labPlanId' | 'state' | 'publishedImage' | 'exportedImageKey' | 'exportOperationId'> & {
  key: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  provisioningState: string;
};

export interface LabChange {
  provisioningState?: string;
  state?: LabState;
  title?: string;
  description?: string | null;
  tags?: Record<string, string>;
  vmProfile?: LabVmProfile;
  autoShutdownProfile?: AutoShutdownProfile;
  connectionProfile?: ConnectionProfile;
  securityProfile?: SecurityProfile;
  publishedImage?: string | null;
  exportedImageKey?: string | null;
  exportOperationId?: string | null;
}

export interface LabUserRecord {
  key: string;
  labKey: string;
  name: string;
  email: string;
  displayName: string | null;
  registrationState: string;
  invitationState: string;
  invitationSent: string | null;
  additionalUsageQuotaSeconds: number;
  createdAt: string;
  createdBy: string;
}

type PlanName = { subscription_id: string; resource_group: string; name: string };

function toLab(r: LabTable, plan: PlanName | undefined): LabRecord {
  return Object.assign(resourceMeta(r), {
    labPlanId: plan ? labPlanArmId({ subscriptionId: plan.subscription_id, resourceGroup: plan.resource_group, name: plan.name }) : null,
    title: r.title,
    description: r.description,
    state: r.state as LabState,
    vmProfile: JSON.parse(r.vm_profile) as LabVmProfile,
    autoShutdownProfile: JSON.parse(r.auto_shutdown_profile) as AutoShutdownProfile,
    connectionProfile: JSON.parse(r.connection_profile) as ConnectionProfile,
    securityProfile: JSON.parse(r.security_profile) as SecurityProfile,
    exportOperationId: r.export_operation_id,
    labPlanKey: r.lab_plan_id,
    adminPasswordHash: r.admin_password_hash,
    sourceImageKey: r.source_image_id,
    versionKey: r.version_id,
    publishedImage: r.published_image,
    exportedImageKey: r.exported_image_id,
  });
}

function toColumns(c: LabChange): Partial<LabTable> {
  const out: Partial<LabTable> = {};
  if (c.provisioningState !== undefined) out.provisioning_state = c.provisioningState;
  if (c.state !== undefined) out.state = c.state;
  if (c.title !== undefined) out.title = c.title;
  if (c.description !== undefined) out.description = c.description;
  if (c.tags !== undefined) out.tags = JSON.stringify(c.tags);
  if (c.vmProfile !== undefined) out.vm_profile = JSON.stringify(c.vmProfile);
  if (c.autoShutdownProfile !== undefined) out.auto_shutdown_profile = JSON.stringify(c.autoShutdownProfile);
  if (c.connectionProfile !== undefined) out.connection_profile = JSON.stringify(c.connectionProfile);
  if (c.securityProfile !== undefined) out.security_profile = JSON.stringify(c.securityProfile);
  if (c.publishedImage !== undefined) out.published_image = c.publishedImage;
  if (c.exportedImageKey !== undefined) out.exported_image_id = c.exportedImageKey;
  if (c.exportOperationId !== undefined) out.export_operation_id = c.exportOperationId;
  return out;
}

const toUser = (u: LabUserTable): LabUserRecord => ({
  key: u.id,
  labKey: u.lab_id,
  name: u.name,
  email: u.email,
  displayName: u.display_name,
  registrationState: u.registration_state,
  invitationState: u.invitation_state,
  invitationSent: u.invitation_sent,
  additionalUsageQuotaSeconds: u.additional_usage_quota_seconds,
  createdAt: u.created_at,
  createdBy: u.created_by,
});

export class LabRepository {
  constructor(readonly db: Kysely<Database>) {}

  private async withPlans(db: Db, rows: LabTable[]): Promise<LabRecord[]> {
    const planKeys = [...new Set(rows.map((r) => r.lab_plan_id).filter((k): k is string => k !== null))];
    const plans = planKeys.length
      ? await db.selectFrom('lab_plans').select(['id', 'subscription_id', 'resource_group', 'name']).where('id', 'in', planKeys).execute()
      : [];
    const byKey = new Map(plans.map((p) => [p.id, p]));
    return rows.map((r) => toLab(r, r.lab_plan_id ? byKey.get(r.lab_plan_id) : undefined));
  }

  async byName(db: Db, sub: string, rg: string, name: string, lock = false): Promise<LabRecord | undefined> {
    const q = db
      .selectFrom('labs')
      .selectAll()
      .where('subscription_id', '=', sub.toLowerCase())
      .where('resource_group_key', '=', keyOf(rg))
      .where('name_key', '=', keyOf(name));
    const r = await (lock ? forUpdate(db, q) : q).executeTakeFirst();
    return r ? (await this.withPlans(db, [r]))[0] : undefined;
  }

  async byKey(key: string, db: Db = this.db, lock = false): Promise<LabRecord | undefined> {
    const q = db.selectFrom('labs').selectAll().where('id', '=', key);
    const r = await (lock ? forUpdate(db, q) : q).executeTakeFirst();
    return r ? (await this.withPlans(db, [r]))[0] : undefined;
  }

  /** Labs of a subscription by key order, for paging; `memberEmail` keeps the labs that person is a user of. */
  async list(q: { sub: string; rg?: string; memberEmail?: string; after?: string; limit: number }): Promise<LabRecord[]> {
    let s = this.db.selectFrom('labs').selectAll().where('subscription_id', '=', q.sub.toLowerCase());
    if (q.rg !== undefined) s = s.where('resource_group_key', '=', keyOf(q.rg));
    if (q.memberEmail !== undefined) s = s.where('id', 'in', this.db.selectFrom('lab_users').select('lab_id').where('email', '=', q.memberEmail));
    if (q.after) s = s.where('id', '>', q.after);
    return this.withPlans(this.db, await s.orderBy('id').limit(q.limit).execute());
  }

  /** The lab whose registration code this is (codes live in the security profile). */
  async byRegistrationCode(code: string): Promise<LabRecord | undefined> {
    const rows = await this.db.selectFrom('labs').selectAll().execute();
    const hit = rows.find((l) => (JSON.parse(l.security_profile) as SecurityProfile).registrationCode === code);
    return hit ? (await this.withPlans(this.db, [hit]))[0] : undefined;
  }

  /** Names of (at most `limit`) labs made on a plan (a plan with labs cannot be deleted). */
  async namesOnPlan(planKey: string, db: Db = this.db, limit?: number): Promise<string[]> {
    let q = db.selectFrom('labs').select('name').where('lab_plan_id', '=', planKey);
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map((r) => r.name);
  }

  /** Labs made from any of these image versions (a version in use cannot be deleted). */
  async madeFromVersions(versionKeys: string[]): Promise<{ versionKey: string; name: string }[]> {
    if (!versionKeys.length) return [];
    const rows = await this.db.selectFrom('labs').select(['version_id', 'name']).where('version_id', 'in', versionKeys).execute();
    return rows.map((r) => ({ versionKey: r.version_id, name: r.name }));
  }

  async insert(db: Db, by: Principal, l: NewLab): Promise<LabRecord> {
    const row: LabTable = {
      id: l.key,
      subscription_id: l.subscriptionId.toLowerCase(),
      resource_group: l.resourceGroup,
      resource_group_key: keyOf(l.resourceGroup),
      name: l.name,
      name_key: keyOf(l.name),
      location: l.location,
      tags: JSON.stringify(l.tags),
      provisioning_state: l.provisioningState,
      lab_plan_id: l.labPlanKey,
      title: l.title,
      description: l.description,
      state: 'Draft',
      vm_profile: JSON.stringify(l.vmProfile),
      auto_shutdown_profile: JSON.stringify(l.autoShutdownProfile),
      connection_profile: JSON.stringify(l.connectionProfile),
      security_profile: JSON.stringify(l.securityProfile),
      admin_password_hash: l.adminPasswordHash,
      source_image_id: l.sourceImageKey,
      version_id: l.versionKey,
      published_image: null,
      exported_image_id: null,
      export_operation_id: null,
      ...creationStamp(by),
    };
    await db.insertInto('labs').values(row).execute();
    return (await this.withPlans(db, [row]))[0] as LabRecord;
  }

  /** A change the server makes (no new ETag unless `etag`). */
  async update(db: Db, key: string, change: LabChange, opts: { etag?: boolean } = {}): Promise<void> {
    const set = { ...toColumns(change), ...(opts.etag ? { etag: newEtag() } : {}) };
    if (Object.keys(set).length) await db.updateTable('labs').set(set).where('id', '=', key).execute();
  }

  /** A change by a person, with a new ETag and modification stamp. */
  async modify(db: Db, key: string, by: Principal, change: LabChange): Promise<LabRecord> {
    await db
      .updateTable('labs')
      .set({ ...toColumns(change), ...modificationStamp(by) })
      .where('id', '=', key)
      .execute();
    return (await this.byKey(key, db)) as LabRecord;
  }

  async delete(db: Db, key: string): Promise<void> {
    await db.deleteFrom('lab_users').where('lab_id', '=', key).execute();
    await db.deleteFrom('labs').where('id', '=', key).execute();
  }

  // ---- the people of a lab ----

  /** A lab's users by name order; `email` keeps one person's entry only. */
  async users(labKey: string, email?: string): Promise<LabUserRecord[]> {
    let q = this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', labKey);
    if (email !== undefined) q = q.where('email', '=', email);
    return (await q.orderBy('name_key').execute()).map(toUser);
  }

  /** A lab's users in the order they were added (seats go to them in this order). */
  async usersByArrival(labKey: string): Promise<LabUserRecord[]> {
    return (await this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', labKey).orderBy('created_at').execute()).map(toUser);
  }

  async userByName(labKey: string, name: string): Promise<LabUserRecord | undefined> {
    const u = await this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', labKey).where('name_key', '=', keyOf(name)).executeTakeFirst();
    return u ? toUser(u) : undefined;
  }

  async userByEmail(labKey: string, email: string): Promise<LabUserRecord | undefined> {
    const u = await this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', labKey).where('email', '=', email).executeTakeFirst();
    return u ? toUser(u) : undefined;
  }

  async isMember(labKey: string, email: string): Promise<boolean> {
    return (await this.db.selectFrom('lab_users').select('id').where('lab_id', '=', labKey).where('email', '=', email).executeTakeFirst()) !== undefined;
  }

  async userNameKeys(labKey: string): Promise<Set<string>> {
    return new Set((await this.db.selectFrom('lab_users').select('name_key').where('lab_id', '=', labKey).execute()).map((u) => u.name_key));
  }

  async addUser(
    u: Pick<LabUserRecord, 'key' | 'labKey' | 'name' | 'email' | 'registrationState' | 'additionalUsageQuotaSeconds' | 'createdBy'>,
  ): Promise<void> {
    await this.db
      .insertInto('lab_users')
      .values({
        id: u.key,
        lab_id: u.labKey,
        name: u.name,
        name_key: keyOf(u.name),
        email: u.email,
        display_name: null,
        registration_state: u.registrationState,
        invitation_state: 'NotSent',
        invitation_sent: null,
        additional_usage_quota_seconds: u.additionalUsageQuotaSeconds,
        created_at: nowIso(),
        created_by: u.createdBy,
      })
      .execute();
  }

  async updateUser(
    key: string,
    change: { additionalUsageQuotaSeconds?: number; registrationState?: string; invitationState?: string; invitationSent?: string },
  ): Promise<void> {
    const set: Partial<LabUserTable> = {};
    if (change.additionalUsageQuotaSeconds !== undefined) set.additional_usage_quota_seconds = change.additionalUsageQuotaSeconds;
    if (change.registrationState !== undefined) set.registration_state = change.registrationState;
    if (change.invitationState !== undefined) set.invitation_state = change.invitationState;
    if (change.invitationSent !== undefined) set.invitation_sent = change.invitationSent;
    if (Object.keys(set).length) await this.db.updateTable('lab_users').set(set).where('id', '=', key).execute();
  }

  async deleteUser(key: string): Promise<void> {
    await this.db.deleteFrom('lab_users').where('id', '=', key).execute();
  }
}
