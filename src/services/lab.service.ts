// Labs: made on a lab plan from one of its images, with a template VM the
// educator prepares, then published as student VMs (jobs/lab.jobs.ts). This
// service owns the `labs` table and the rules of a lab itself: who sees it
// (staff every lab, a student the labs they are a user of), who changes it
// (its creator or an admin), its profiles, and its size. The lab's VMs,
// users and export to the gallery are the services beside it.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { hashPassword } from '../compute/qemu/seed.js';
import type { Database, Db } from '../db/schema.js';
import { conflict, forbidden, invalidParameter, LabforgeError, notFound } from '../errors.js';
import type { ChunkStore } from '../imagestore/chunk-store.js';
import { galleryArmId, labArmId, versionArmId } from '../lib/arm-id.js';
import type { Principal } from '../lib/principal.js';
import type { Operation, OperationStore } from '../operations/operation.store.js';
import type { Lab, LabChange, LabRecord, LabRepository, LabVmProfile } from '../repositories/lab.repository.js';
import type { AutoShutdownProfile, ConnectionProfile } from '../repositories/profiles.js';
import { checkName, checkPreconditions, checkTags, type Preconditions, type RegionCatalog } from './common.js';
import { checkAutoShutdown, checkConnectionProfile, type LabPlan, type LabPlanImage, LabPlanService } from './lab-plan.service.js';
import { type AccessPolicy, isStaff, parseDuration } from './policy.js';
import type { ResourceGroupService } from './resource-group.service.js';
import type { VmService } from './vm.service.js';
import { labVmHostName } from './vm-rules.js';

export type { Lab, LabRecord, LabState, LabVmProfile } from '../repositories/lab.repository.js';

export const LAB_CREATE = 'labs.lab.create';
export const LAB_PUBLISH = 'labs.lab.publish';
export const MAX_SEATS = 400;

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

/** ISO 8601 duration (or hh:mm) to seconds; a refusal naming `field` when it is not one. */
export function durationSeconds(v: string, field: string): number {
  const seconds = parseDuration(v);
  if (seconds === undefined) throw invalidParameter(`${field} must be a duration such as PT10H (10 hours) or 10:00; got '${v}'.`, field);
  return seconds;
}

export const secondsToDuration = (s: number) => `PT${Math.floor(s / 3600)}H${Math.floor((s % 3600) / 60)}M${s % 60}S`;

const checkCapacity = (capacity: number) => {
  if (!Number.isInteger(capacity) || capacity < 0 || capacity > MAX_SEATS) {
    throw invalidParameter(`sku.capacity must be a whole number of student VMs from 0 to ${MAX_SEATS}.`, 'properties.virtualMachineProfile.sku.capacity');
  }
};

/** A lab as its callers see it (no password hash, no internal keys). */
export function publicLab(l: LabRecord): Lab {
  const { labPlanKey: _p, adminPasswordHash: _h, sourceImageKey: _s, versionKey: _v, publishedImage: _i, exportedImageKey: _e, ...rest } = l;
  return rest;
}

export class LabService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly labs: LabRepository,
    private readonly groups: ResourceGroupService,
    private readonly plans: LabPlanService,
    private readonly vms: VmService,
    private readonly regions: RegionCatalog,
    private readonly operations: OperationStore,
    private readonly imageStores: Map<string, ChunkStore>,
    private readonly policy: AccessPolicy,
  ) {}

  private notFoundError(rg: string, name: string) {
    return notFound('ResourceNotFound', `The Resource 'Microsoft.LabServices/labs/${name}' under resource group '${rg}' was not found.`);
  }

  /** Staff see every lab; a student sees the labs they are a user of, and no other. */
  private async visible(p: Principal, l: LabRecord | undefined): Promise<boolean> {
    if (!l) return false;
    if (isStaff(p)) return true;
    return this.labs.isMember(l.key, p.subject.toLowerCase());
  }

  /** The lab, when the caller may see it; otherwise the same 404 as a lab that does not exist. */
  async requireLab(p: Principal, sub: string, rg: string, name: string): Promise<LabRecord> {
    const l = await this.labs.byName(this.db, sub, rg, name);
    if (!l || !(await this.visible(p, l))) throw this.notFoundError(rg, name);
    return l;
  }

  /** A creator changes only their own labs; admins change any. */
  checkOwner(p: Principal, l: LabRecord): void {
    this.policy.checkLabOwner(p, l);
  }

  async get(p: Principal, sub: string, rg: string, name: string): Promise<Lab> {
    return publicLab(await this.requireLab(p, sub, rg, name));
  }

  async list(p: Principal, sub: string, rg: string | undefined, after: string | undefined, limit: number): Promise<Lab[]> {
    if (rg !== undefined) await this.groups.get(sub, rg);
    const labs = await this.labs.list({
      sub,
      ...(rg !== undefined ? { rg } : {}),
      ...(isStaff(p) ? {} : { memberEmail: p.subject.toLowerCase() }),
      after,
      limit,
    });
    return labs.map(publicLab);
  }

  // ---- creating and changing ----

  private resolveImage(plan: LabPlan, images: LabPlanImage[], id: string | undefined, region: string): LabPlanImage {
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
          galleryArmId(i.galleryRecord).toLowerCase() === (galleryImage[1] as string).toLowerCase() &&
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
    if (!hit.availableRegions.includes(region) && hit.latestVersion && !withRegion.includes('NotReplicatedToRegion')) withRegion.push('NotReplicatedToRegion');
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
    checkName('lab', name);
    const tags = input.tags === undefined ? undefined : checkTags(input.tags);
    const props = input.properties ?? {};
    const existing = await this.labs.byName(this.db, sub, rg, name);
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
    const allowed = plan.allowedRegions;
    const region = this.regions.require(input.location ?? plan.location).name;
    if (allowed.length && !allowed.includes(region)) {
      throw invalidParameter(`Lab plan '${plan.name}' allows labs in ${allowed.join(', ')} only, not in '${region}'.`, 'location');
    }
    const img = this.resolveImage(plan, await this.plans.planImages(plan), vp.imageReference?.id, region);
    const version = img.latestVersion as NonNullable<LabPlanImage['latestVersion']>;
    const osState = img.imageRecord.osState;
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
    checkCapacity(capacity);
    const usageQuota = vp.usageQuota ?? 'PT10H';
    durationSeconds(usageQuota, 'properties.virtualMachineProfile.usageQuota');
    const passwordHash = admin?.password ? await hashPassword(admin.password) : null;
    const profile: LabVmProfile = {
      createOption,
      imageReference: { id: vp.imageReference?.id as string },
      exactVersion: versionArmId({
        subscriptionId: img.galleryRecord.subscriptionId,
        resourceGroup: img.galleryRecord.resourceGroup,
        galleryName: img.galleryRecord.name,
        imageName: img.imageRecord.name,
        name: version.name,
      }),
      osType: img.imageRecord.osType,
      osState,
      sku: { name: sizeName, capacity },
      adminUser: admin?.username ? { username: admin.username } : null,
      nonAdminUser: vp.nonAdminUser?.username ? { username: vp.nonAdminUser.username } : null,
      usageQuota,
      useSharedPassword: vp.useSharedPassword ?? 'Disabled',
      installGpuDrivers: vp.additionalCapabilities?.installGpuDrivers ?? 'Disabled',
    };
    const labKey = randomUUID();
    const where = { key: labKey, subscriptionId: sub.toLowerCase(), resourceGroup: group.name, name, location: region };
    // The template VM is validated by the VM runtime's own rules (size, credentials), with the password in hand for its seed.
    const template =
      createOption === 'TemplateVM'
        ? await this.vms.newLabVm({
            lab: where,
            vmName: 'template',
            vmType: 'Template',
            versionKey: version.key,
            exactVersion: profile.exactVersion,
            imageReference: profile.imageReference.id,
            osType: profile.osType,
            osState,
            hyperVGeneration: img.imageRecord.hyperVGeneration,
            size: sizeName,
            computerName: labVmHostName(name, 'template', profile.osType === 'Windows'),
            admin: admin?.username ? { username: admin.username, password: admin.password, passwordHash } : null,
            owner: p.subject,
            customData: vp.customData,
          })
        : undefined;
    const result = await this.db
      .transaction()
      .execute(async (tx) => {
        if (await this.labs.byName(tx, sub, rg, name, true)) throw conflict(`Lab '${name}' was created by another request at the same moment.`);
        const lab = await this.labs.insert(tx, p, {
          ...where,
          tags: tags ?? {},
          provisioningState: 'Creating',
          labPlanKey: plan.key,
          title: props.title ?? name,
          description: props.description ?? null,
          vmProfile: profile,
          autoShutdownProfile: checkAutoShutdown(props.autoShutdownProfile, 'properties.autoShutdownProfile', plan.defaultAutoShutdownProfile),
          connectionProfile: checkConnectionProfile(props.connectionProfile, 'properties.connectionProfile', plan.defaultConnectionProfile),
          securityProfile: { registrationCode: randomBytes(6).toString('base64url'), openAccess: props.securityProfile?.openAccess ?? 'Disabled' },
          adminPasswordHash: passwordHash,
          sourceImageKey: img.imageKey,
          versionKey: version.key,
        });
        if (template) await this.vms.insertLabVms(tx, p, [template]);
        const operation = await this.operations.enqueue(tx, {
          kind: LAB_CREATE,
          subscriptionId: lab.subscriptionId,
          location: region,
          targetId: labArmId(lab),
          input: { labKey, templateKey: template?.key ?? null },
          createdBy: p.subject,
        });
        return { lab: publicLab(lab), created: true, operation };
      })
      .catch(async (err: unknown) => {
        if (template) await this.vms.removeFiles([template.key]);
        throw err;
      });
    this.operations.notify();
    return result;
  }

  private async update(
    p: Principal,
    existing: LabRecord,
    input: LabInput,
    tags: Record<string, string> | undefined,
    mode: 'put' | 'patch',
    pre?: Preconditions,
  ): Promise<{ lab: Lab; created: boolean; operation?: Operation }> {
    if (!(await this.visible(p, existing))) throw this.notFoundError(existing.resourceGroup, existing.name);
    if (!isStaff(p)) throw forbidden(`Students cannot change labs; '${p.subject}' has role '${p.role}'. Nothing was changed.`);
    this.checkOwner(p, existing);
    const props = input.properties ?? {};
    const result = await this.db.transaction().execute(async (tx) => {
      const l = (await this.labs.byKey(existing.key, tx, true)) as LabRecord;
      checkPreconditions(`Lab '${l.name}'`, l.etag, pre);
      const profile = structuredClone(l.vmProfile);
      const vp = props.virtualMachineProfile;
      for (const [field, want, have] of [
        ['labPlanId', props.labPlanId, l.labPlanId ?? undefined],
        ['virtualMachineProfile.imageReference.id', vp?.imageReference?.id, profile.imageReference.id],
        ['virtualMachineProfile.sku.name', vp?.sku?.name, profile.sku.name],
        ['virtualMachineProfile.adminUser.username', vp?.adminUser?.username, profile.adminUser?.username],
      ] as const) {
        if (want === undefined || (have !== undefined && want.toLowerCase() === (have ?? '').toLowerCase())) continue;
        throw conflict(
          `Changing property '${field}' of an existing lab is not supported. Create a new lab with the new value.`,
          `properties.${field}`,
          'PropertyChangeNotAllowed',
        );
      }
      const change: LabChange = {};
      if (tags !== undefined || mode === 'put') change.tags = tags ?? {};
      if (props.title !== undefined) change.title = props.title;
      if (props.description !== undefined) change.description = props.description;
      if (props.autoShutdownProfile)
        change.autoShutdownProfile = checkAutoShutdown(props.autoShutdownProfile, 'properties.autoShutdownProfile', l.autoShutdownProfile);
      if (props.connectionProfile)
        change.connectionProfile = checkConnectionProfile(props.connectionProfile, 'properties.connectionProfile', l.connectionProfile);
      if (props.securityProfile?.openAccess !== undefined) change.securityProfile = { ...l.securityProfile, openAccess: props.securityProfile.openAccess };
      if (vp?.usageQuota !== undefined) {
        durationSeconds(vp.usageQuota, 'properties.virtualMachineProfile.usageQuota');
        profile.usageQuota = vp.usageQuota;
      }
      let operation: Operation | undefined;
      const capacity = vp?.sku?.capacity;
      if (capacity !== undefined && capacity !== profile.sku.capacity) {
        checkCapacity(capacity);
        profile.sku.capacity = capacity;
        if (l.state === 'Published') {
          await this.checkIdle(tx, l);
          change.state = 'Scaling';
          operation = await this.operations.enqueue(tx, {
            kind: LAB_PUBLISH,
            subscriptionId: l.subscriptionId,
            location: l.location,
            targetId: labArmId(l),
            input: { labKey: l.key, mode: 'scale' },
            createdBy: p.subject,
          });
        }
      }
      change.vmProfile = profile;
      return { lab: publicLab(await this.labs.modify(tx, l.key, p, change)), created: false, operation };
    });
    if (result.operation) this.operations.notify();
    return result;
  }

  private async checkIdle(db: Db, l: LabRecord): Promise<void> {
    const active = await this.operations.activeFor(db, labArmId(l));
    if (active) {
      throw conflict(
        `Lab '${l.name}' is busy with operation ${active.id} (${active.kind}, ${active.percentComplete}% done). Wait for it to finish, then retry.`,
      );
    }
  }

  async delete(p: Principal, sub: string, rg: string, name: string, pre?: Preconditions): Promise<boolean> {
    const l = await this.labs.byName(this.db, sub, rg, name);
    if (!l || !(await this.visible(p, l))) return false;
    if (!isStaff(p)) throw forbidden(`Students cannot delete labs. Nothing was changed.`);
    this.checkOwner(p, l);
    checkPreconditions(`Lab '${name}'`, l.etag, pre);
    await this.checkIdle(this.db, l);
    const vmKeys = (await this.vms.labVms(l.key)).map((v) => v.key);
    await this.db.transaction().execute(async (tx) => {
      await this.vms.deleteLabRecords(tx, l.key);
      await this.labs.delete(tx, l.key);
    });
    await this.vms.removeFiles(vmKeys);
    await this.dropSnapshot(l, l.publishedImage);
    await this.vms.collectBases();
    return true;
  }

  /** Removes a snapshot the lab published on, unless it is the image version itself. */
  async dropSnapshot(l: LabRecord, image: string | null): Promise<void> {
    if (image && image !== l.versionKey && image.startsWith('lab-')) await this.imageStores.get(l.location)?.deleteManifest(image);
  }

  // ---- publish ----

  async publish(p: Principal, sub: string, rg: string, name: string): Promise<Operation> {
    const found = await this.requireLab(p, sub, rg, name);
    if (!isStaff(p)) throw forbidden('Students cannot publish labs. Nothing was changed.');
    this.checkOwner(p, found);
    const op = await this.db.transaction().execute(async (tx) => {
      const l = (await this.labs.byKey(found.key, tx, true)) as LabRecord;
      await this.checkIdle(tx, l);
      if (l.provisioningState !== 'Succeeded')
        throw conflict(`Lab '${l.name}' is ${l.provisioningState}; only a lab that was created successfully can be published.`);
      await this.labs.update(tx, l.key, { state: 'Publishing' });
      return this.operations.enqueue(tx, {
        kind: LAB_PUBLISH,
        subscriptionId: l.subscriptionId,
        location: l.location,
        targetId: labArmId(l),
        input: { labKey: l.key, mode: 'publish' },
        createdBy: p.subject,
      });
    });
    this.operations.notify();
    return op;
  }

  /** A lab by key, if it still exists. */
  find(labKey: string): Promise<LabRecord | undefined> {
    return this.labs.byKey(labKey);
  }

  /** The lab an operation works on. */
  async load(labKey: string): Promise<LabRecord> {
    const l = await this.labs.byKey(labKey);
    if (!l) throw new LabforgeError(404, 'ResourceNotFound', 'The lab this operation works on was deleted.');
    return l;
  }

  /** Records that the lab's template is being saved as this image definition, by this operation. */
  async recordExport(labKey: string, exportedImageKey: string, exportOperationId: string | null): Promise<void> {
    await this.labs.update(this.db, labKey, { exportedImageKey, exportOperationId });
  }
}
