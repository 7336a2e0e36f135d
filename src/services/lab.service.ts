// Labs: a template VM made from a lab plan's image, exported back to the
// gallery when the educator wants to keep it, and published as student VMs
// that are copy-on-write disks on a snapshot of the template. Lab VMs are rows
// of the VM service (named `labs/<lab>/<vm>`), so power, capture, reimage and
// reconciliation are the VM runtime's.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { hashPassword } from '../compute/qemu/seed.js';
import type { Database, Db, LabPlanTable, LabTable, LabUserTable, VirtualMachineTable } from '../db/schema.js';
import { conflict, forbidden, invalidParameter, LabforgeError, notFound } from '../errors.js';
import { type ChunkStore, MANIFEST_FORMAT } from '../imagestore/chunk-store.js';
import { galleryArmId, labArmId, labPlanArmId, versionArmId } from '../lib/arm-id.js';
import { nowIso } from '../lib/time.js';
import type { Operation, OperationStore } from '../operations/operation.store.js';
import type { OperationContext, OperationHandler } from '../operations/worker.js';
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
import { type ImageVersionService, parseVersionName } from './image-version.service.js';
import {
  type AutoShutdownProfile,
  type ConnectionProfile,
  checkAutoShutdown,
  checkConnectionProfile,
  type LabPlanImage,
  LabPlanService,
} from './lab-plan.service.js';
import type { ResourceGroupService } from './resource-group.service.js';
import { armIdOf, type VirtualMachine, type VmService, vmToDomain } from './vm.service.js';

export const LAB_CREATE = 'labs.lab.create';
export const LAB_PUBLISH = 'labs.lab.publish';
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

export interface Lab extends ResourceMeta {
  labPlanId: string | null;
  title: string;
  description: string | null;
  state: LabState;
  vmProfile: LabVmProfile;
  autoShutdownProfile: AutoShutdownProfile;
  connectionProfile: ConnectionProfile;
  securityProfile: { registrationCode: string; openAccess: string };
  exportOperationId: string | null;
}

export interface LabInput {
  location?: string;
  tags?: unknown;
  properties?: {
    labPlanId?: string;
    title?: string;
    description?: string | null;
    autoShutdownProfile?: Partial<AutoShutdownProfile>;
    connectionProfile?: Partial<ConnectionProfile>;
    securityProfile?: { openAccess?: string };
    virtualMachineProfile?: {
      createOption?: string;
      imageReference?: { id?: string };
      sku?: { name?: string; capacity?: number };
      adminUser?: { username?: string; password?: string };
      nonAdminUser?: { username?: string; password?: string };
      usageQuota?: string;
      useSharedPassword?: string;
      additionalCapabilities?: { installGpuDrivers?: string };
      /** labforge: a #cloud-config document the template VM applies at first boot (Generalized images). */
      customData?: string;
    };
  };
}

export interface LabVm extends VirtualMachine {
  labKey: string;
  labName: string;
  vmName: string;
  vmType: 'Template' | 'User';
  claimedBy: string | null;
}

export interface LabUser {
  key: string;
  labName: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  email: string;
  displayName: string | null;
  registrationState: string;
  invitationState: string;
  invitationSent: string | null;
  additionalUsageQuotaSeconds: number;
  totalUsageSeconds: number;
  createdAt: string;
  createdBy: string;
}

const isStaff = (p: Principal) => p.role === 'admin' || p.role === 'creator';
const LAB_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const MAX_SEATS = 400;

/** ISO 8601 duration (or hh:mm) to seconds. */
export function durationSeconds(v: string, field: string): number {
  const hm = /^(\d{1,4}):(\d{2})$/.exec(v);
  if (hm) return Number(hm[1]) * 3600 + Number(hm[2]) * 60;
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(v);
  if (!m || v === 'P' || v.endsWith('T')) throw invalidParameter(`${field} must be a duration such as PT10H (10 hours) or 10:00; got '${v}'.`, field);
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Math.floor(Number(m[4] ?? 0));
}

export const secondsToDuration = (s: number) => `PT${Math.floor(s / 3600)}H${Math.floor((s % 3600) / 60)}M${s % 60}S`;

const toLab = (r: LabTable, plan: LabPlanTable | undefined): Lab =>
  Object.assign(resourceMeta(r), {
    labPlanId: plan ? labPlanArmId(resourceMeta(plan)) : null,
    title: r.title,
    description: r.description,
    state: r.state as LabState,
    vmProfile: JSON.parse(r.vm_profile) as LabVmProfile,
    autoShutdownProfile: JSON.parse(r.auto_shutdown_profile) as AutoShutdownProfile,
    connectionProfile: JSON.parse(r.connection_profile) as ConnectionProfile,
    securityProfile: JSON.parse(r.security_profile) as Lab['securityProfile'],
    exportOperationId: r.export_operation_id,
  });

const hostName = (lab: string, vm: string, windows: boolean) => {
  const base = `${lab}-${vm}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return (windows ? base.slice(-15) : base.slice(0, 63)).replace(/^-+|-+$/g, '') || 'labvm';
};

export class LabService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly groups: ResourceGroupService,
    private readonly galleries: GalleryService,
    private readonly versions: ImageVersionService,
    private readonly plans: LabPlanService,
    private readonly vms: VmService,
    private readonly regions: RegionCatalog,
    private readonly operations: OperationStore,
    private readonly imageStores: Map<string, ChunkStore>,
  ) {}

  // ---- reading ----

  private async labRow(db: Db, sub: string, rg: string, name: string, lock = false) {
    const q = db
      .selectFrom('labs')
      .selectAll()
      .where('subscription_id', '=', sub.toLowerCase())
      .where('resource_group_key', '=', keyOf(rg))
      .where('name_key', '=', keyOf(name));
    return (lock ? forUpdate(db, q) : q).executeTakeFirst();
  }

  private notFoundError(rg: string, name: string) {
    return notFound('ResourceNotFound', `The Resource 'Microsoft.LabServices/labs/${name}' under resource group '${rg}' was not found.`);
  }

  /** Staff see every lab; a student sees the labs they are a user of, and no other. */
  private async visible(p: Principal, r: LabTable | undefined): Promise<boolean> {
    if (!r) return false;
    if (isStaff(p)) return true;
    const u = await this.db.selectFrom('lab_users').select('id').where('lab_id', '=', r.id).where('email', '=', p.subject.toLowerCase()).executeTakeFirst();
    return u !== undefined;
  }

  async requireLab(p: Principal, sub: string, rg: string, name: string): Promise<LabTable> {
    const r = await this.labRow(this.db, sub, rg, name);
    if (!r || !(await this.visible(p, r))) throw this.notFoundError(rg, name);
    return r;
  }

  private async render(r: LabTable, db: Db = this.db): Promise<Lab> {
    const plan = r.lab_plan_id ? await db.selectFrom('lab_plans').selectAll().where('id', '=', r.lab_plan_id).executeTakeFirst() : undefined;
    return toLab(r, plan);
  }

  async get(p: Principal, sub: string, rg: string, name: string): Promise<Lab> {
    return this.render(await this.requireLab(p, sub, rg, name));
  }

  async list(p: Principal, sub: string, rg: string | undefined, after: string | undefined, limit: number): Promise<Lab[]> {
    let q = this.db.selectFrom('labs').selectAll().where('subscription_id', '=', sub.toLowerCase());
    if (rg !== undefined) {
      await this.groups.get(sub, rg);
      q = q.where('resource_group_key', '=', keyOf(rg));
    }
    if (!isStaff(p)) q = q.where('id', 'in', this.db.selectFrom('lab_users').select('lab_id').where('email', '=', p.subject.toLowerCase()));
    if (after) q = q.where('id', '>', after);
    const out: Lab[] = [];
    for (const r of await q.orderBy('id').limit(limit).execute()) out.push(await this.render(r));
    return out;
  }

  /** A creator changes only their own labs; admins change any. */
  private checkOwner(p: Principal, r: LabTable): void {
    if (p.role === 'admin' || r.created_by === p.subject) return;
    throw forbidden(
      `Lab '${r.name}' belongs to '${r.created_by}'; '${p.subject}' (role ${p.role}) may look at it but not change it. Ask its creator or an admin. Nothing was changed.`,
    );
  }

  // ---- creating and changing ----

  private resolveImage(plan: LabPlanTable, images: LabPlanImage[], id: string | undefined, region: string): LabPlanImage {
    const field = 'properties.virtualMachineProfile.imageReference.id';
    if (!id) throw invalidParameter(`${field} is required: the id of one of the lab plan's images (GET .../labPlans/${plan.name}/images).`, field);
    const planImage = /\/providers\/Microsoft\.LabServices\/labPlans\/([^/]+)\/images\/([^/]+)$/i.exec(id);
    const galleryImage =
      /^(\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Compute\/galleries\/[^/]+)\/images\/([^/]+)(\/versions\/[^/]+)?$/i.exec(id);
    let hit: LabPlanImage | undefined;
    if (planImage) {
      if ((planImage[1] as string).toLowerCase() !== plan.name.toLowerCase()) {
        throw invalidParameter(`The image '${id}' belongs to another lab plan than the lab's ('${plan.name}').`, field);
      }
      hit = images.find((i) => i.name.toLowerCase() === (planImage[2] as string).toLowerCase());
    } else if (galleryImage) {
      hit = images.find(
        (i) =>
          galleryArmId(resourceMeta(i.gallery)).toLowerCase() === (galleryImage[1] as string).toLowerCase() &&
          i.name.toLowerCase() === (galleryImage[2] as string).toLowerCase(),
      );
    }
    if (!hit) {
      throw invalidParameter(
        `'${id}' is not one of lab plan '${plan.name}''s images: labs use the built-in images and the image definitions of the plan's attached gallery.`,
        field,
      );
    }
    const reasons = hit.hiddenReasons.filter((r) => r !== 'NotReplicatedToRegion' || !hit?.availableRegions.includes(region));
    const withRegion = hit.availableRegions.includes(region) ? reasons.filter((r) => r !== 'NotReplicatedToRegion') : reasons;
    if (!hit.availableRegions.includes(region) && hit.latest && !withRegion.includes('NotReplicatedToRegion')) withRegion.push('NotReplicatedToRegion');
    if (withRegion.length) {
      throw new LabforgeError(400, 'ImageNotAvailable', LabPlanService.describeHidden({ ...hit, hiddenReasons: withRegion }, plan.name, region), field);
    }
    return hit;
  }

  async createOrUpdate(
    p: Principal,
    sub: string,
    rg: string,
    name: string,
    input: LabInput,
    mode: 'put' | 'patch',
    pre?: Preconditions,
  ): Promise<{ lab: Lab; created: boolean; operation?: Operation }> {
    if (!LAB_NAME.test(name)) {
      throw invalidParameter(`The lab name '${name}' is not valid: use 1-100 letters, digits, '-', '_' or '.', starting with a letter or digit.`, 'labName');
    }
    const tags = input.tags === undefined ? undefined : checkTags(input.tags);
    const props = input.properties ?? {};
    const existing = await this.labRow(this.db, sub, rg, name);
    if (existing) return this.update(p, existing, input, tags, mode, pre);
    if (mode === 'patch') throw this.notFoundError(rg, name);
    if (pre?.ifMatch !== undefined) checkPreconditions(`Lab '${name}'`, undefined, pre);
    const vp = props.virtualMachineProfile;
    if (!props.labPlanId) throw invalidParameter('properties.labPlanId is required: the lab plan (lab account) the lab belongs to.', 'properties.labPlanId');
    if (!vp)
      throw invalidParameter(
        'properties.virtualMachineProfile is required: the image, size and credentials of the lab VMs.',
        'properties.virtualMachineProfile',
      );
    const plan = await this.plans.byArmId(props.labPlanId, 'properties.labPlanId');
    const group = await this.groups.get(sub, rg);
    const allowed = JSON.parse(plan.allowed_regions) as string[];
    const region = this.regions.require(input.location ?? plan.location).name;
    if (allowed.length && !allowed.includes(region)) {
      throw invalidParameter(`Lab plan '${plan.name}' allows labs in ${allowed.join(', ')} only, not in '${region}'.`, 'location');
    }
    const img = this.resolveImage(plan, await this.plans.images(plan), vp.imageReference?.id, region);
    const version = img.latest as NonNullable<LabPlanImage['latest']>;
    const osState = img.image.os_state;
    const createOption = (['TemplateVM', 'Image'] as const).find((c) => c.toLowerCase() === (vp.createOption ?? 'TemplateVM').toLowerCase());
    if (!createOption)
      throw invalidParameter(`'${vp.createOption}' is not a createOption: use TemplateVM or Image.`, 'properties.virtualMachineProfile.createOption');
    // The seeds' rule: a Generalized image needs the lab's credentials; a Specialized one keeps its own accounts.
    const admin = vp.adminUser;
    if (osState === 'Generalized') {
      if (!admin?.username || !admin.password) {
        throw new LabforgeError(
          400,
          'CredentialsRequired',
          `Image '${img.name}' is Generalized: every lab VM gets its accounts at first boot, so the lab needs virtualMachineProfile.adminUser with username and password.`,
          'properties.virtualMachineProfile.adminUser',
        );
      }
    } else if (admin?.password || vp.nonAdminUser?.password) {
      throw invalidParameter(
        `Image '${img.name}' is Specialized: its VMs keep the accounts and passwords the image was saved with, so the lab must not set passwords. Sign in with the image's own accounts.`,
        'properties.virtualMachineProfile.adminUser',
      );
    }
    const sizeName = vp.sku?.name ?? 'Standard_B1s';
    const capacity = vp.sku?.capacity ?? 0;
    if (!Number.isInteger(capacity) || capacity < 0 || capacity > MAX_SEATS) {
      throw invalidParameter(`sku.capacity must be a whole number of student VMs from 0 to ${MAX_SEATS}.`, 'properties.virtualMachineProfile.sku.capacity');
    }
    const usageQuota = vp.usageQuota ?? 'PT10H';
    durationSeconds(usageQuota, 'properties.virtualMachineProfile.usageQuota');
    const passwordHash = admin?.password ? await hashPassword(admin.password) : null;
    const profile: LabVmProfile = {
      createOption,
      imageReference: { id: vp.imageReference?.id as string },
      exactVersion: versionArmId({
        subscriptionId: img.gallery.subscription_id,
        resourceGroup: img.gallery.resource_group,
        galleryName: img.gallery.name,
        imageName: img.image.name,
        name: version.name,
      }),
      osType: img.image.os_type,
      osState,
      sku: { name: sizeName, capacity },
      adminUser: admin?.username ? { username: admin.username } : null,
      nonAdminUser: vp.nonAdminUser?.username ? { username: vp.nonAdminUser.username } : null,
      usageQuota,
      useSharedPassword: vp.useSharedPassword ?? 'Disabled',
      installGpuDrivers: vp.additionalCapabilities?.installGpuDrivers ?? 'Disabled',
    };
    const labKey = randomUUID();
    const lab: LabTable = {
      id: labKey,
      subscription_id: sub.toLowerCase(),
      resource_group: group.name,
      resource_group_key: keyOf(group.name),
      name,
      name_key: keyOf(name),
      location: region,
      tags: JSON.stringify(tags ?? {}),
      provisioning_state: 'Creating',
      lab_plan_id: plan.id,
      title: props.title ?? name,
      description: props.description ?? null,
      state: 'Draft',
      vm_profile: JSON.stringify(profile),
      auto_shutdown_profile: JSON.stringify(
        checkAutoShutdown(props.autoShutdownProfile, 'properties.autoShutdownProfile', JSON.parse(plan.default_auto_shutdown_profile)),
      ),
      connection_profile: JSON.stringify(
        checkConnectionProfile(props.connectionProfile, 'properties.connectionProfile', JSON.parse(plan.default_connection_profile)),
      ),
      security_profile: JSON.stringify({ registrationCode: randomBytes(6).toString('base64url'), openAccess: props.securityProfile?.openAccess ?? 'Disabled' }),
      admin_password_hash: passwordHash,
      source_image_id: img.imageKey,
      version_id: version.id,
      published_image: null,
      exported_image_id: null,
      export_operation_id: null,
      ...creationStamp(p),
    };
    // The template VM is validated by the VM runtime's own rules (size, credentials), with the password in hand for its seed.
    const template =
      createOption === 'TemplateVM'
        ? await this.vms.prepareLabVm(p, {
            lab,
            vmName: 'template',
            vmType: 'Template',
            versionKey: version.id,
            exactVersion: profile.exactVersion,
            imageReference: profile.imageReference.id,
            osType: profile.osType,
            osState,
            hyperVGeneration: img.image.hyper_v_generation,
            size: sizeName,
            computerName: hostName(name, 'template', profile.osType === 'Windows'),
            admin: admin?.username ? { username: admin.username, password: admin.password, passwordHash } : null,
            owner: p.subject,
            customData: vp.customData,
          })
        : undefined;
    const result = await this.db
      .transaction()
      .execute(async (tx) => {
        if (await this.labRow(tx, sub, rg, name, true)) throw conflict(`Lab '${name}' was created by another request at the same moment.`);
        await tx.insertInto('labs').values(lab).execute();
        if (template) await tx.insertInto('virtual_machines').values(template).execute();
        const operation = await this.operations.enqueue(tx, {
          kind: LAB_CREATE,
          subscriptionId: lab.subscription_id,
          location: region,
          targetId: labArmId(resourceMeta(lab)),
          input: { labKey, templateKey: template?.id ?? null },
          createdBy: p.subject,
        });
        return { lab: toLab(lab, plan), created: true, operation };
      })
      .catch(async (err: unknown) => {
        if (template) await this.vms.removeVmFiles(template.id);
        throw err;
      });
    this.operations.notify();
    return result;
  }

  private async update(
    p: Principal,
    existing: LabTable,
    input: LabInput,
    tags: Record<string, string> | undefined,
    mode: 'put' | 'patch',
    pre?: Preconditions,
  ): Promise<{ lab: Lab; created: boolean; operation?: Operation }> {
    if (!(await this.visible(p, existing))) throw this.notFoundError(existing.resource_group, existing.name);
    if (!isStaff(p)) throw forbidden(`Students cannot change labs; '${p.subject}' has role '${p.role}'. Nothing was changed.`);
    this.checkOwner(p, existing);
    const props = input.properties ?? {};
    const result = await this.db.transaction().execute(async (tx) => {
      const r = (await forUpdate(tx, tx.selectFrom('labs').selectAll().where('id', '=', existing.id)).executeTakeFirst()) as LabTable;
      checkPreconditions(`Lab '${r.name}'`, r.etag, pre);
      const profile = JSON.parse(r.vm_profile) as LabVmProfile;
      const vp = props.virtualMachineProfile;
      for (const [field, want, have] of [
        ['labPlanId', props.labPlanId, undefined],
        ['virtualMachineProfile.imageReference.id', vp?.imageReference?.id, profile.imageReference.id],
        ['virtualMachineProfile.sku.name', vp?.sku?.name, profile.sku.name],
        ['virtualMachineProfile.adminUser.username', vp?.adminUser?.username, profile.adminUser?.username],
      ] as const) {
        if (want === undefined || (have !== undefined && want.toLowerCase() === (have ?? '').toLowerCase())) continue;
        if (field === 'labPlanId') {
          const plan = r.lab_plan_id ? await tx.selectFrom('lab_plans').selectAll().where('id', '=', r.lab_plan_id).executeTakeFirst() : undefined;
          if (plan && labPlanArmId(resourceMeta(plan)).toLowerCase() === want.toLowerCase()) continue;
        }
        throw conflict(
          `Changing property '${field}' of an existing lab is not supported. Create a new lab with the new value.`,
          `properties.${field}`,
          'PropertyChangeNotAllowed',
        );
      }
      const upd: Partial<LabTable> = { ...modificationStamp(p) };
      if (tags !== undefined || mode === 'put') upd.tags = JSON.stringify(tags ?? {});
      if (props.title !== undefined) upd.title = props.title;
      if (props.description !== undefined) upd.description = props.description;
      if (props.autoShutdownProfile)
        upd.auto_shutdown_profile = JSON.stringify(
          checkAutoShutdown(props.autoShutdownProfile, 'properties.autoShutdownProfile', JSON.parse(r.auto_shutdown_profile)),
        );
      if (props.connectionProfile)
        upd.connection_profile = JSON.stringify(
          checkConnectionProfile(props.connectionProfile, 'properties.connectionProfile', JSON.parse(r.connection_profile)),
        );
      if (props.securityProfile?.openAccess !== undefined) {
        upd.security_profile = JSON.stringify({ ...JSON.parse(r.security_profile), openAccess: props.securityProfile.openAccess });
      }
      if (vp?.usageQuota !== undefined) {
        durationSeconds(vp.usageQuota, 'properties.virtualMachineProfile.usageQuota');
        profile.usageQuota = vp.usageQuota;
      }
      let operation: Operation | undefined;
      const capacity = vp?.sku?.capacity;
      if (capacity !== undefined && capacity !== profile.sku.capacity) {
        if (!Number.isInteger(capacity) || capacity < 0 || capacity > MAX_SEATS) {
          throw invalidParameter(`sku.capacity must be a whole number of student VMs from 0 to ${MAX_SEATS}.`, 'properties.virtualMachineProfile.sku.capacity');
        }
        profile.sku.capacity = capacity;
        if (r.state === 'Published') {
          await this.checkIdle(tx, r);
          upd.state = 'Scaling';
          operation = await this.operations.enqueue(tx, {
            kind: LAB_PUBLISH,
            subscriptionId: r.subscription_id,
            location: r.location,
            targetId: labArmId(resourceMeta(r)),
            input: { labKey: r.id, mode: 'scale' },
            createdBy: p.subject,
          });
        }
      }
      upd.vm_profile = JSON.stringify(profile);
      await tx.updateTable('labs').set(upd).where('id', '=', r.id).execute();
      return { lab: await this.render({ ...r, ...upd }, tx), created: false, operation };
    });
    if (result.operation) this.operations.notify();
    return result;
  }

  private async checkIdle(tx: Db, r: LabTable): Promise<void> {
    const active = await this.operations.activeFor(tx, labArmId(resourceMeta(r)));
    if (active) {
      throw conflict(
        `Lab '${r.name}' is busy with operation ${active.id} (${active.kind}, ${active.percentComplete}% done). Wait for it to finish, then retry.`,
      );
    }
  }

  async delete(p: Principal, sub: string, rg: string, name: string, pre?: Preconditions): Promise<boolean> {
    const r = await this.labRow(this.db, sub, rg, name);
    if (!r || !(await this.visible(p, r))) return false;
    if (!isStaff(p)) throw forbidden(`Students cannot delete labs. Nothing was changed.`);
    this.checkOwner(p, r);
    checkPreconditions(`Lab '${name}'`, r.etag, pre);
    await this.checkIdle(this.db, r);
    const vms = await this.db.selectFrom('virtual_machines').select('id').where('lab_id', '=', r.id).execute();
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('virtual_machines').where('lab_id', '=', r.id).execute();
      await tx.deleteFrom('lab_users').where('lab_id', '=', r.id).execute();
      await tx.deleteFrom('labs').where('id', '=', r.id).execute();
    });
    for (const v of vms) await this.vms.removeVmFiles(v.id);
    await this.dropSnapshot(r, r.published_image);
    await this.vms.collectBases();
    return true;
  }

  // ---- publish ----

  async publish(p: Principal, sub: string, rg: string, name: string): Promise<Operation> {
    const r = await this.requireLab(p, sub, rg, name);
    if (!isStaff(p)) throw forbidden('Students cannot publish labs. Nothing was changed.');
    this.checkOwner(p, r);
    const op = await this.db.transaction().execute(async (tx) => {
      const row = (await forUpdate(tx, tx.selectFrom('labs').selectAll().where('id', '=', r.id)).executeTakeFirst()) as LabTable;
      await this.checkIdle(tx, row);
      if (row.provisioning_state !== 'Succeeded')
        throw conflict(`Lab '${row.name}' is ${row.provisioning_state}; only a lab that was created successfully can be published.`);
      await tx.updateTable('labs').set({ state: 'Publishing' }).where('id', '=', row.id).execute();
      return this.operations.enqueue(tx, {
        kind: LAB_PUBLISH,
        subscriptionId: row.subscription_id,
        location: row.location,
        targetId: labArmId(resourceMeta(row)),
        input: { labKey: row.id, mode: 'publish' },
        createdBy: p.subject,
      });
    });
    this.operations.notify();
    return op;
  }

  private store(region: string): ChunkStore {
    const s = this.imageStores.get(region);
    if (!s) throw new LabforgeError(500, 'RegionNotConfigured', `Region '${region}' has no image store configured on this server.`);
    return s;
  }

  /** The template's current disk as a manifest in the lab's region: what student VMs are built on. */
  private async snapshotTemplate(lab: LabTable, ctx: OperationContext<{ labKey: string }>): Promise<string> {
    const template = await this.templateRow(lab.id);
    if (!template) return lab.version_id;
    const store = this.store(lab.location);
    await ctx.progress(5, 'Saving the template disk (only what changed since the image)');
    const { disk } = await this.vms.captureDisk(template.id, store, 'os');
    const name = `lab-${lab.id}-${Date.now().toString(36)}`;
    await store.putManifest(name, { format: MANIFEST_FORMAT, disks: [disk] });
    return name;
  }

  private async templateRow(labKey: string): Promise<VirtualMachineTable | undefined> {
    return this.db.selectFrom('virtual_machines').selectAll().where('lab_id', '=', labKey).where('vm_type', '=', 'Template').executeTakeFirst();
  }

  private async dropSnapshot(lab: LabTable, image: string | null): Promise<void> {
    if (image && image !== lab.version_id && image.startsWith('lab-')) await this.imageStores.get(lab.location)?.deleteManifest(image);
  }

  /** Creates student VMs `from`..`to-1` on the published image: disks and VM records, not booted. */
  private async addSeats(lab: LabTable, image: string, indices: number[], ctx: OperationContext<{ labKey: string }>, base: number): Promise<void> {
    const profile = JSON.parse(lab.vm_profile) as LabVmProfile;
    const rows: VirtualMachineTable[] = [];
    for (const i of indices) {
      const row = await this.vms.prepareLabVm(
        { tokenId: 'system', subject: lab.created_by, role: 'creator' },
        {
          lab,
          vmName: String(i),
          vmType: 'User',
          versionKey: image,
          exactVersion: profile.exactVersion,
          imageReference: profile.imageReference.id,
          osType: profile.osType,
          osState: profile.osState,
          hyperVGeneration: (await this.versionGen(lab)) ?? 'V1',
          size: profile.sku.name,
          computerName: hostName(lab.name, String(i), profile.osType === 'Windows'),
          admin: profile.adminUser ? { username: profile.adminUser.username, passwordHash: lab.admin_password_hash } : null,
          owner: lab.created_by,
          seedLater: true,
        },
      );
      rows.push(row);
    }
    if (rows.length) await this.db.insertInto('virtual_machines').values(rows).execute();
    let done = 0;
    const queue = [...rows];
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        await this.vms.provisionDisk(r.id);
        await this.db
          .updateTable('virtual_machines')
          .set({ provisioning_state: 'Succeeded', state: 'Stopped', status_message: null })
          .where('id', '=', r.id)
          .execute();
        done++;
        if (done % 10 === 0) await ctx.progress(base + Math.floor(((95 - base) * done) / rows.length), `Created ${done} of ${rows.length} student VMs`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, rows.length) }, worker));
  }

  private async versionGen(lab: LabTable): Promise<string | undefined> {
    if (!lab.source_image_id) return undefined;
    return (await this.db.selectFrom('gallery_images').select('hyper_v_generation').where('id', '=', lab.source_image_id).executeTakeFirst())
      ?.hyper_v_generation;
  }

  /** Gives unclaimed seats to the lab's users who have none, in the order they were added. */
  private async assignSeats(lab: LabTable): Promise<void> {
    const users = await this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', lab.id).orderBy('created_at').execute();
    const seats = await this.db
      .selectFrom('virtual_machines')
      .select(['id', 'owner', 'name'])
      .where('lab_id', '=', lab.id)
      .where('vm_type', '=', 'User')
      .execute();
    seats.sort((a, b) => Number(a.name.split('/')[2]) - Number(b.name.split('/')[2]));
    const claimed = new Set(seats.map((s) => s.owner));
    const free = seats.filter((s) => !users.some((u) => u.email === s.owner));
    for (const u of users) {
      if (claimed.has(u.email)) continue;
      const seat = free.shift();
      if (!seat) break;
      await this.db.updateTable('virtual_machines').set({ owner: u.email }).where('id', '=', seat.id).execute();
    }
  }

  private async runPublish(ctx: OperationContext<{ labKey: string; mode: 'publish' | 'scale' }>): Promise<void> {
    const lab = await this.load(ctx.input.labKey);
    const profile = JSON.parse(lab.vm_profile) as LabVmProfile;
    const seats = await this.db.selectFrom('virtual_machines').select(['id', 'name']).where('lab_id', '=', lab.id).where('vm_type', '=', 'User').execute();
    if (ctx.input.mode === 'scale' && lab.published_image) {
      const indices = seats.map((s) => Number(s.name.split('/')[2])).sort((a, b) => a - b);
      if (indices.length > profile.sku.capacity) {
        // Fewer seats: the highest-numbered VMs go.
        const drop = seats.filter((s) => Number(s.name.split('/')[2]) >= profile.sku.capacity);
        await this.db
          .deleteFrom('virtual_machines')
          .where(
            'id',
            'in',
            drop.map((d) => d.id),
          )
          .execute();
        for (const d of drop) await this.vms.removeVmFiles(d.id);
      } else {
        const add: number[] = [];
        for (let i = 0; add.length < profile.sku.capacity - indices.length; i++) if (!indices.includes(i)) add.push(i);
        await this.addSeats(lab, lab.published_image, add, ctx, 10);
      }
    } else {
      let image = lab.published_image;
      await ctx.step('image', async () => {
        image = await this.snapshotTemplate(lab, ctx);
        ctx.checkpoint.image = image;
      });
      image = (ctx.checkpoint.image as string | undefined) ?? image;
      await ctx.step('seats', async () => {
        // Re-publishing replaces every student VM: what students changed is lost (as in Azure).
        const old = await this.db.selectFrom('virtual_machines').select('id').where('lab_id', '=', lab.id).where('vm_type', '=', 'User').execute();
        if (old.length) {
          await this.db
            .deleteFrom('virtual_machines')
            .where(
              'id',
              'in',
              old.map((o) => o.id),
            )
            .execute();
          for (const o of old) await this.vms.removeVmFiles(o.id);
        }
        await this.addSeats(
          lab,
          image as string,
          Array.from({ length: profile.sku.capacity }, (_, i) => i),
          ctx,
          30,
        );
      });
      const previous = lab.published_image;
      await this.db.updateTable('labs').set({ published_image: image }).where('id', '=', lab.id).execute();
      if (previous !== image) await this.dropSnapshot(lab, previous);
    }
    await this.assignSeats(lab);
    await this.vms.collectBases();
    const count = (await this.db.selectFrom('virtual_machines').select('id').where('lab_id', '=', lab.id).where('vm_type', '=', 'User').execute()).length;
    await ctx.complete(`Published: ${count} student VM(s)`, async (tx) => {
      await tx
        .updateTable('labs')
        .set({ state: 'Published', etag: `"${randomUUID()}"` })
        .where('id', '=', lab.id)
        .execute();
    });
  }

  private async load(labKey: string): Promise<LabTable> {
    const r = await this.db.selectFrom('labs').selectAll().where('id', '=', labKey).executeTakeFirst();
    if (!r) throw new LabforgeError(404, 'ResourceNotFound', 'The lab this operation works on was deleted.');
    return r;
  }

  // ---- lab VMs ----

  private toLabVm(r: VirtualMachineTable, lab: LabTable): LabVm {
    const vmName = r.name.split('/')[2] as string;
    return Object.assign(vmToDomain(r), {
      labKey: lab.id,
      labName: lab.name,
      vmName,
      vmType: (r.vm_type ?? 'User') as 'Template' | 'User',
      claimedBy: r.vm_type === 'User' && r.owner !== lab.created_by ? r.owner : null,
    });
  }

  /** Staff see every VM of a lab; a student only the one they claimed. */
  async listVms(p: Principal, sub: string, rg: string, labName: string): Promise<LabVm[]> {
    const lab = await this.requireLab(p, sub, rg, labName);
    let q = this.db.selectFrom('virtual_machines').selectAll().where('lab_id', '=', lab.id);
    if (!isStaff(p)) q = q.where('owner', '=', p.subject.toLowerCase()).where('vm_type', '=', 'User');
    const rows = await q.execute();
    const out: LabVm[] = [];
    for (const r of rows) out.push(this.toLabVm(await this.vms.reconcile1(r), lab));
    return out.sort((a, b) => (a.vmType === b.vmType ? Number(a.vmName) - Number(b.vmName) : a.vmType === 'Template' ? -1 : 1));
  }

  async getVm(p: Principal, sub: string, rg: string, labName: string, vmName: string): Promise<LabVm> {
    const vm = (await this.listVms(p, sub, rg, labName)).find((v) => v.vmName.toLowerCase() === vmName.toLowerCase());
    if (!vm) {
      throw notFound(
        'ResourceNotFound',
        `The Resource 'Microsoft.LabServices/labs/${labName}/virtualMachines/${vmName}' under resource group '${rg}' was not found.`,
      );
    }
    return vm;
  }

  async vmAction(
    p: Principal,
    sub: string,
    rg: string,
    labName: string,
    vmName: string,
    action: 'start' | 'stop' | 'reimage' | 'redeploy',
  ): Promise<Operation> {
    const vm = await this.getVm(p, sub, rg, labName, vmName);
    const lab = await this.requireLab(p, sub, rg, labName);
    if (vm.vmType === 'Template' || !(vm.claimedBy && vm.claimedBy === p.subject.toLowerCase())) {
      if (!isStaff(p)) throw forbidden('Only lab staff can do this to a VM that is not yours.');
      this.checkOwner(p, lab);
    }
    if (action === 'start' && !isStaff(p)) await this.checkQuota(lab, vm);
    return this.vms.powerByKey(p, vm.key, action);
  }

  private async checkQuota(lab: LabTable, vm: LabVm): Promise<void> {
    const profile = JSON.parse(lab.vm_profile) as LabVmProfile;
    const user = await this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', lab.id).where('email', '=', vm.owner).executeTakeFirst();
    const quota = durationSeconds(profile.usageQuota, 'usageQuota') + (user?.additional_usage_quota_seconds ?? 0);
    const used = await this.vms.usageSeconds(vm.key);
    if (used >= quota) {
      throw conflict(
        `Your ${Math.round(quota / 3600)} hours on this lab's VM are used up (${Math.round(used / 60)} minutes so far). Ask your teacher for more hours.`,
        undefined,
        'QuotaExceeded',
      );
    }
  }

  /** Sets a new password for the admin or non-admin user of a lab VM from a Generalized image; it applies at the next start. */
  async resetPassword(p: Principal, sub: string, rg: string, labName: string, vmName: string, body: { username?: string; password?: string }): Promise<void> {
    const vm = await this.getVm(p, sub, rg, labName, vmName);
    if (!isStaff(p) && vm.claimedBy !== p.subject.toLowerCase()) throw forbidden('You can reset the password of your own VM only.');
    if (vm.osState !== 'Generalized') {
      throw conflict(
        'This VM was made from a Specialized image: its accounts live inside the guest. Change the password there.',
        undefined,
        'OperationNotAllowed',
      );
    }
    if (!body.username || !body.password) throw invalidParameter('username and password are both required.', 'username');
    if (body.username !== vm.adminUsername) throw invalidParameter(`'${body.username}' is not the admin user of this VM ('${vm.adminUsername}').`, 'username');
    if (vm.state !== 'Stopped') {
      throw conflict(`The VM is ${vm.state}; stop it first. The new password applies at its next start.`, undefined, 'OperationNotAllowed');
    }
    await this.vms.setPassword(vm.key, await hashPassword(body.password));
  }

  // ---- export to the gallery ----

  /**
   * Saves a lab VM (the template) into the plan's attached gallery: a new Specialized image definition, or a
   * new version of the image the lab came from or was last exported to. Returns the version operation.
   */
  async saveImage(
    p: Principal,
    sub: string,
    rg: string,
    planName: string,
    body: { name?: string; labVirtualMachineId?: string; updateExisting?: boolean },
  ): Promise<{ operation: Operation; imageId: string; version: string }> {
    const plan = await this.plans.requirePlanRow(this.db, sub, rg, planName);
    const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.LabServices\/labs\/([^/]+)\/virtualMachines\/([^/]+)$/i.exec(
      body.labVirtualMachineId ?? '',
    );
    if (!m)
      throw invalidParameter(
        'labVirtualMachineId must be the id of a lab VM (…/providers/Microsoft.LabServices/labs/<lab>/virtualMachines/template).',
        'labVirtualMachineId',
      );
    const lab = await this.requireLab(p, m[1] as string, m[2] as string, m[3] as string);
    if (lab.lab_plan_id !== plan.id) throw invalidParameter(`Lab '${lab.name}' belongs to another lab plan than '${plan.name}'.`, 'labVirtualMachineId');
    if (!isStaff(p)) throw forbidden('Only lab staff can export a lab VM to the gallery.');
    this.checkOwner(p, lab);
    const vm = await this.getVm(p, m[1] as string, m[2] as string, m[3] as string, m[4] as string);
    if (!plan.shared_gallery_id) {
      throw conflict(
        `Lab plan '${plan.name}' has no attached gallery to save images into. An admin attaches one (sharedGalleryId).`,
        undefined,
        'NoAttachedGallery',
      );
    }
    const gm = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)$/i.exec(
      plan.shared_gallery_id,
    ) as RegExpExecArray;
    const [gSub, gRg, gName] = [gm[1] as string, gm[2] as string, gm[3] as string];
    let imageName: string;
    if (body.updateExisting) {
      const targetKey = lab.exported_image_id ?? lab.source_image_id;
      const target = targetKey ? await this.db.selectFrom('gallery_images').selectAll().where('id', '=', targetKey).executeTakeFirst() : undefined;
      const gallery = target ? await this.db.selectFrom('galleries').selectAll().where('id', '=', target.gallery_id).executeTakeFirst() : undefined;
      if (!target || !gallery || galleryArmId(resourceMeta(gallery)).toLowerCase() !== plan.shared_gallery_id.toLowerCase()) {
        throw conflict(
          `Lab '${lab.name}' has no image in the attached gallery to update (it was made from ${target ? `'${target.name}', outside that gallery` : 'an image that no longer exists'}). Save it as a new image instead.`,
          'updateExisting',
          'OperationNotAllowed',
        );
      }
      if (target.os_state !== 'Specialized') {
        throw conflict(
          `Image '${target.name}' is Generalized; a lab template is saved as a Specialized image. Save it as a new image instead.`,
          'updateExisting',
          'OperationNotAllowed',
        );
      }
      imageName = target.name;
    } else {
      if (!body.name) throw invalidParameter('name is required: the name of the new image definition.', 'name');
      imageName = body.name;
      const exists = await this.galleries.getImage(gSub, gRg, gName, imageName).catch(() => undefined);
      if (exists) {
        throw conflict(
          `The gallery already has an image named '${imageName}'. Choose another name, or update the existing image (updateExisting).`,
          'name',
          'Conflict',
        );
      }
      await this.galleries.createOrUpdateImage(
        p,
        gSub,
        gRg,
        gName,
        imageName,
        {
          osType: vm.osType,
          osState: 'Specialized',
          hyperVGeneration: vm.hyperVGeneration,
          identifier: { publisher: 'labforge-lab', offer: lab.name, sku: imageName },
          description: `Saved from the template of lab '${lab.title}'.`,
        },
        'put',
      );
    }
    const existingVersions = await this.versions.list(gSub, gRg, gName, imageName, undefined, 10_000);
    const next = existingVersions.map((v) => parseVersionName(v.name)).sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2])[0];
    const versionName = next ? `${next[0]}.${next[1]}.${next[2] + 1}` : '1.0.0';
    const { operation } = await this.versions.createOrUpdate(
      p,
      gSub,
      gRg,
      gName,
      imageName,
      versionName,
      {
        storageProfile: {
          source: {
            virtualMachineId: armIdOf({
              subscription_id: lab.subscription_id,
              resource_group: lab.resource_group,
              name: `labs/${lab.name}/${vm.vmName}`,
              lab_id: lab.id,
            }),
          },
        },
      },
      'put',
    );
    const image = await this.galleries.getImage(gSub, gRg, gName, imageName);
    // The educator saved it to reuse it: the plan offers it to creators at once.
    await this.plans.enable(this.db, plan.id, image.key, 'Enabled', p);
    await this.db
      .updateTable('labs')
      .set({ exported_image_id: image.key, export_operation_id: operation?.id ?? null })
      .where('id', '=', lab.id)
      .execute();
    return {
      operation: operation as Operation,
      imageId: `${galleryArmId({ subscriptionId: gSub, resourceGroup: gRg, name: gName })}/images/${imageName}`,
      version: versionName,
    };
  }

  // ---- users ----

  private toUser(u: LabUserTable, lab: LabTable, usage: number): LabUser {
    return {
      key: u.id,
      labName: lab.name,
      subscriptionId: lab.subscription_id,
      resourceGroup: lab.resource_group,
      name: u.name,
      email: u.email,
      displayName: u.display_name,
      registrationState: u.registration_state,
      invitationState: u.invitation_state,
      invitationSent: u.invitation_sent,
      additionalUsageQuotaSeconds: u.additional_usage_quota_seconds,
      totalUsageSeconds: usage,
      createdAt: u.created_at,
      createdBy: u.created_by,
    };
  }

  private async usageOf(lab: LabTable, email: string): Promise<number> {
    const vm = await this.db
      .selectFrom('virtual_machines')
      .select('id')
      .where('lab_id', '=', lab.id)
      .where('owner', '=', email)
      .where('vm_type', '=', 'User')
      .executeTakeFirst();
    return vm ? this.vms.usageSeconds(vm.id) : 0;
  }

  async listUsers(p: Principal, sub: string, rg: string, labName: string): Promise<LabUser[]> {
    const lab = await this.requireLab(p, sub, rg, labName);
    let q = this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', lab.id);
    if (!isStaff(p)) q = q.where('email', '=', p.subject.toLowerCase());
    const out: LabUser[] = [];
    for (const u of await q.orderBy('name_key').execute()) out.push(this.toUser(u, lab, await this.usageOf(lab, u.email)));
    return out;
  }

  async getUser(p: Principal, sub: string, rg: string, labName: string, name: string): Promise<LabUser> {
    const u = (await this.listUsers(p, sub, rg, labName)).find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (!u)
      throw notFound('ResourceNotFound', `The Resource 'Microsoft.LabServices/labs/${labName}/users/${name}' under resource group '${rg}' was not found.`);
    return u;
  }

  /** Adds a student by email (or changes their extra quota); a published lab gives them a free seat at once. */
  async putUser(
    p: Principal,
    sub: string,
    rg: string,
    labName: string,
    name: string,
    body: { email?: string; additionalUsageQuota?: string },
  ): Promise<{ user: LabUser; created: boolean }> {
    const lab = await this.requireLab(p, sub, rg, labName);
    if (!isStaff(p)) throw forbidden('Only lab staff can add students.');
    this.checkOwner(p, lab);
    if (!/^[-\w._()]{1,100}$/.test(name))
      throw invalidParameter(`The user name '${name}' is not valid: use 1-100 letters, digits, '-', '_', '.' or parentheses.`, 'userName');
    const extra = body.additionalUsageQuota !== undefined ? durationSeconds(body.additionalUsageQuota, 'properties.additionalUsageQuota') : undefined;
    const existing = await this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', lab.id).where('name_key', '=', keyOf(name)).executeTakeFirst();
    if (existing) {
      if (body.email && body.email.toLowerCase() !== existing.email) {
        throw conflict(
          `Changing property 'email' of user '${name}' is not allowed. Remove the user and add them again.`,
          'properties.email',
          'PropertyChangeNotAllowed',
        );
      }
      if (extra !== undefined) await this.db.updateTable('lab_users').set({ additional_usage_quota_seconds: extra }).where('id', '=', existing.id).execute();
      return { user: await this.getUser(p, sub, rg, labName, name), created: false };
    }
    const email = body.email?.trim().toLowerCase();
    if (!email || !/^[^@\s]{1,64}@[^@\s]{1,189}$/.test(email)) {
      throw invalidParameter("properties.email is required: the student's email address (they sign in with it).", 'properties.email');
    }
    await this.db
      .insertInto('lab_users')
      .values({
        id: randomUUID(),
        lab_id: lab.id,
        name,
        name_key: keyOf(name),
        email,
        display_name: null,
        registration_state: 'NotRegistered',
        invitation_state: 'NotSent',
        invitation_sent: null,
        additional_usage_quota_seconds: extra ?? 0,
        created_at: nowIso(),
        created_by: p.subject,
      })
      .execute();
    if (lab.state === 'Published') await this.assignSeats(lab);
    return { user: await this.getUser(p, sub, rg, labName, name), created: true };
  }

  async deleteUser(p: Principal, sub: string, rg: string, labName: string, name: string): Promise<boolean> {
    const lab = await this.requireLab(p, sub, rg, labName);
    if (!isStaff(p)) throw forbidden('Only lab staff can remove students.');
    this.checkOwner(p, lab);
    const u = await this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', lab.id).where('name_key', '=', keyOf(name)).executeTakeFirst();
    if (!u) return false;
    await this.db.deleteFrom('lab_users').where('id', '=', u.id).execute();
    // Their seat goes back to the lab (its disk is reset for the next student).
    const seat = await this.db.selectFrom('virtual_machines').select('id').where('lab_id', '=', lab.id).where('owner', '=', u.email).executeTakeFirst();
    if (seat) await this.db.updateTable('virtual_machines').set({ owner: lab.created_by }).where('id', '=', seat.id).execute();
    return true;
  }

  /** Marks an invitation as sent (labforge sends no email itself: the answer carries the registration code to pass on). */
  async invite(p: Principal, sub: string, rg: string, labName: string, name: string): Promise<{ user: LabUser; registrationCode: string }> {
    const lab = await this.requireLab(p, sub, rg, labName);
    if (!isStaff(p)) throw forbidden('Only lab staff can invite students.');
    const u = await this.getUser(p, sub, rg, labName, name);
    await this.db.updateTable('lab_users').set({ invitation_state: 'Sent', invitation_sent: nowIso() }).where('id', '=', u.key).execute();
    return {
      user: await this.getUser(p, sub, rg, labName, name),
      registrationCode: (JSON.parse(lab.security_profile) as Lab['securityProfile']).registrationCode,
    };
  }

  /**
   * A student with a lab's registration code: registered when the lab lists their email, or added when the lab
   * is open to anyone with the code. Returns false when the code or the email does not fit.
   */
  async registerStudent(email: string, code: string): Promise<boolean> {
    const labs = await this.db.selectFrom('labs').selectAll().execute();
    const lab = labs.find((l) => (JSON.parse(l.security_profile) as Lab['securityProfile']).registrationCode === code);
    if (!lab) return false;
    const user = await this.db.selectFrom('lab_users').selectAll().where('lab_id', '=', lab.id).where('email', '=', email).executeTakeFirst();
    if (user) {
      await this.db.updateTable('lab_users').set({ registration_state: 'Registered' }).where('id', '=', user.id).execute();
    } else {
      if ((JSON.parse(lab.security_profile) as Lab['securityProfile']).openAccess !== 'Enabled') return false;
      const base = (email.split('@')[0] ?? 'student').replace(/[^\w.-]/g, '-').slice(0, 90) || 'student';
      const taken = new Set((await this.db.selectFrom('lab_users').select('name_key').where('lab_id', '=', lab.id).execute()).map((u) => u.name_key));
      let name = base;
      for (let i = 2; taken.has(keyOf(name)); i++) name = `${base}-${i}`;
      await this.db
        .insertInto('lab_users')
        .values({
          id: randomUUID(),
          lab_id: lab.id,
          name,
          name_key: keyOf(name),
          email,
          display_name: null,
          registration_state: 'Registered',
          invitation_state: 'NotSent',
          invitation_sent: null,
          additional_usage_quota_seconds: 0,
          created_at: nowIso(),
          created_by: 'registration',
        })
        .execute();
    }
    if (lab.state === 'Published') await this.assignSeats(lab);
    return true;
  }

  // ---- operation handlers ----

  handlers(): OperationHandler<{ labKey: string; templateKey?: string | null; mode?: 'publish' | 'scale' }>[] {
    return [
      {
        kind: LAB_CREATE,
        run: async (ctx) => {
          const templateKey = ctx.input.templateKey;
          if (templateKey) {
            await ctx.step('template-disk', () => this.vms.provisionDisk(templateKey, (pct, msg) => ctx.progress(Math.floor(pct / 2), `Template VM: ${msg}`)));
            await ctx.step('template-start', async () => {
              await ctx.progress(60, 'Starting the template VM');
              await this.vms.driver.start(templateKey);
            });
          }
          const status = templateKey ? await this.vms.driver.status(templateKey) : undefined;
          await ctx.complete('Lab created', async (tx) => {
            if (templateKey) await this.vms.settleCreated(tx, templateKey, status);
            await tx
              .updateTable('labs')
              .set({ provisioning_state: 'Succeeded', etag: `"${randomUUID()}"` })
              .where('id', '=', ctx.input.labKey)
              .execute();
          });
        },
        onCancel: async (ctx, tx) => {
          if (ctx.input.templateKey) {
            await tx.deleteFrom('virtual_machines').where('id', '=', ctx.input.templateKey).execute();
            await this.vms.removeVmFiles(ctx.input.templateKey).catch(() => undefined);
          }
          await tx.deleteFrom('labs').where('id', '=', ctx.input.labKey).execute();
        },
        onFailure: async (ctx, tx, error) => {
          if (ctx.input.templateKey) {
            await this.vms.removeVmFiles(ctx.input.templateKey).catch(() => undefined);
            await tx
              .updateTable('virtual_machines')
              .set({ provisioning_state: 'Failed', state: 'Failed', status_code: error.code, status_message: error.message })
              .where('id', '=', ctx.input.templateKey)
              .execute();
          }
          await tx.updateTable('labs').set({ provisioning_state: 'Failed' }).where('id', '=', ctx.input.labKey).execute();
        },
      },
      {
        kind: LAB_PUBLISH,
        run: (ctx) => this.runPublish(ctx as OperationContext<{ labKey: string; mode: 'publish' | 'scale' }>),
        onCancel: async (ctx, tx) => {
          const lab = await tx.selectFrom('labs').selectAll().where('id', '=', ctx.input.labKey).executeTakeFirst();
          await tx
            .updateTable('labs')
            .set({ state: lab?.published_image ? 'Published' : 'Draft' })
            .where('id', '=', ctx.input.labKey)
            .execute();
        },
        onFailure: async (ctx, tx) => {
          const lab = await tx.selectFrom('labs').selectAll().where('id', '=', ctx.input.labKey).executeTakeFirst();
          await tx
            .updateTable('labs')
            .set({ state: lab?.published_image ? 'Published' : 'Draft' })
            .where('id', '=', ctx.input.labKey)
            .execute();
        },
      },
    ];
  }
}
