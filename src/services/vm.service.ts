// Virtual machines made from gallery image versions: each is a qcow2 overlay
// on a base materialised from its region's chunks, booted by the compute
// driver. The VM service is the one writer of the `virtual_machines` table
// (Compute VMs and the VMs of labs): what was asked (image, size, identity),
// the power state and its reason. The driver knows what really runs; the two
// are reconciled at server start and whenever a VM is read. Files (overlays,
// seeds) are compute/vm-disks.ts's; long work runs as jobs (services/jobs/).
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { ComputeDriver, VmState, VmStatus } from '../compute/compute-driver.js';
import { hashPassword } from '../compute/qemu/seed.js';
import type { VmDisks } from '../compute/vm-disks.js';
import type { ComputeConfig } from '../config/config.js';
import type { Database, Db } from '../db/schema.js';
import { conflict, forbidden, invalidParameter, LabforgeError, notFound } from '../errors.js';
import type { ChunkStore, DiskManifest } from '../imagestore/chunk-store.js';
import { parseImageId, versionArmId, vmArmId } from '../lib/arm-id.js';
import type { Principal } from '../lib/principal.js';
import type { Operation, OperationStore } from '../operations/operation.store.js';
import { type NewVm, usageChange, type VmChange, type VmRecord, type VmRepository, vmRecordArmId } from '../repositories/vm.repository.js';
import { osDiskOf } from './capture.service.js';
import { checkPreconditions, checkTags, type Preconditions, type RegionCatalog } from './common.js';
import type { GalleryService } from './gallery.service.js';
import type { ImageVersion, ImageVersionService } from './image-version.service.js';
import { type AccessPolicy, canSeeVm, isStaff, usedSeconds } from './policy.js';
import type { ResourceGroupService } from './resource-group.service.js';
import { checkIdentity, checkVmName, computerNameFor, findSize, parseCustomData } from './vm-rules.js';

export const VM_CREATE = 'compute.vm.create';
export const VM_POWER = 'compute.vm.power';
/** What a power operation does; reimage puts a fresh disk from the image under the VM, redeploy restarts its process anew. */
export type PowerAction = 'start' | 'stop' | 'restart' | 'reimage' | 'redeploy';
const TRANSITION: Record<PowerAction, VmState> = {
  start: 'Starting',
  stop: 'Stopping',
  restart: 'Starting',
  reimage: 'Reimaging',
  redeploy: 'Redeploying',
};

/** A VM as callers see it: its record without the password hash and first-boot data; the port only while it runs. */
export type VirtualMachine = Omit<VmRecord, 'adminPasswordHash' | 'customData' | 'baseFile' | 'usageSeconds' | 'runningSince'>;

export function publicVm(v: VmRecord): VirtualMachine {
  const { adminPasswordHash: _h, customData: _c, baseFile: _b, usageSeconds: _u, runningSince: _r, ...rest } = v;
  return { ...rest, hostPort: v.state === 'Running' ? v.hostPort : null };
}

export interface VmInput {
  location?: string;
  tags?: unknown;
  size?: string;
  imageReference?: string;
  computerName?: string;
  adminUsername?: string;
  adminPassword?: string;
  sshPublicKeys?: string[];
  /** cloud-init user-data (text) run at first boot of a Generalized image. */
  customData?: string;
  /** Who the VM is for (a token subject); they see and use it. Default: the caller. */
  owner?: string;
}

/** A lab VM to make: what `newLabVm` needs to know. */
export interface LabVmSpec {
  lab: { key: string; subscriptionId: string; resourceGroup: string; name: string; location: string };
  vmName: string;
  vmType: 'Template' | 'User';
  /** The manifest the VM's disk is built on: an image version's key or a lab snapshot's name. */
  versionKey: string;
  exactVersion: string;
  imageReference: string;
  osType: string;
  osState: string;
  hyperVGeneration: string;
  size: string;
  computerName: string;
  admin: { username: string; password?: string; passwordHash: string | null } | null;
  owner: string;
  /** Build the identity disk at first start instead of now (from the stored hash). */
  seedLater?: boolean;
  /** A #cloud-config document applied at first boot (Generalized images). */
  customData?: string;
}

const SETTLED: readonly VmState[] = ['Running', 'Stopped', 'Failed'];

/** A VM the driver does not know: its files are gone from the host. */
function missingOnHost(vmKey: string): VmStatus {
  return {
    id: vmKey,
    state: 'Failed',
    serialLog: '',
    error: { code: 'VmMissingOnHost', message: 'The VM files are missing on its host; delete the VM and create it again.' },
  };
}

/** What a VM's status says beyond its state: why it failed, or what its user should know. */
function statusReason(s: VmStatus | undefined): { code: string; message: string } | undefined {
  if (!s) return undefined;
  if (s.state === 'Failed') return s.error ?? { code: 'Unknown', message: 'The VM failed and its host did not say why. Stop it and start it again.' };
  return s.notice;
}

export class VmService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly repo: VmRepository,
    private readonly groups: ResourceGroupService,
    private readonly galleries: GalleryService,
    private readonly versions: ImageVersionService,
    private readonly regions: RegionCatalog,
    private readonly operations: OperationStore,
    private readonly imageStores: Map<string, ChunkStore>,
    readonly driver: ComputeDriver,
    readonly disks: VmDisks,
    private readonly settings: ComputeConfig,
    private readonly policy: AccessPolicy,
  ) {}

  /** The host name people connect to for VMs' forwarded SSH/RDP ports. */
  get connectHost(): string {
    return this.settings.connectHost;
  }

  private notFoundError(rg: string, name: string) {
    return notFound('ResourceNotFound', `The Resource 'Microsoft.Compute/virtualMachines/${name}' under resource group '${rg}' was not found.`);
  }

  async get(p: Principal, sub: string, rg: string, name: string): Promise<VirtualMachine> {
    const v = await this.repo.byName(this.db, sub, rg, name);
    if (!v || !canSeeVm(p, v)) throw this.notFoundError(rg, name);
    return publicVm(await this.reconcileRecord(v));
  }

  async list(p: Principal, sub: string, rg: string | undefined, after: string | undefined, limit: number): Promise<VirtualMachine[]> {
    if (rg !== undefined) await this.groups.get(sub, rg);
    const vms = await this.repo.listCompute({ sub, ...(rg !== undefined ? { rg } : {}), ...(isStaff(p) ? {} : { owner: p.subject }), after, limit });
    const out: VirtualMachine[] = [];
    for (const v of vms) out.push(publicVm(await this.reconcileRecord(v)));
    return out;
  }

  /** Resolves a gallery image or image version id to the version a new VM boots. */
  private async resolveImage(ref: string | undefined, region: string): Promise<{ version: ImageVersion; osType: string; osState: string; gen: string }> {
    const field = 'properties.storageProfile.imageReference.id';
    const id = ref ? parseImageId(ref) : undefined;
    if (!id) {
      throw invalidParameter(
        `${field} must be the id of a gallery image definition (its latest version is used) or of one of its versions, such as /subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/galleries/<g>/images/<i>/versions/1.0.0.`,
        field,
      );
    }
    let version: ImageVersion;
    let image: Awaited<ReturnType<GalleryService['getImage']>>;
    try {
      image = await this.galleries.getImage(id.subscriptionId, id.resourceGroup, id.galleryName, id.imageName);
      version = await this.versions.get(id.subscriptionId, id.resourceGroup, id.galleryName, id.imageName, id.version ?? 'latest');
    } catch (err) {
      if (err instanceof LabforgeError && err.status === 404) throw invalidParameter(`The image '${ref}' cannot be used: ${err.message}`, field);
      throw err;
    }
    if (version.provisioningState !== 'Succeeded' && version.provisioningState !== 'Updating') {
      throw conflict(`Image version ${version.name} is ${version.provisioningState}; wait until it has Succeeded, then retry.`, field);
    }
    const replica = version.replication[region];
    if (replica?.state === 'Failed' && replica.details) {
      throw conflict(`Image version ${image.name} ${version.name} cannot be used in region '${region}': ${replica.details}`, field, 'ImageNotReplicated');
    }
    if (replica?.state !== 'Completed') {
      const done = Object.entries(version.replication)
        .filter(([, r]) => r.state === 'Completed')
        .map(([n]) => n);
      throw conflict(
        `Image version ${image.name} ${version.name} is not replicated to region '${region}' (it is available in: ${done.join(', ') || 'no region yet'}). Create the VM in one of those regions, or add '${region}' to the version's target regions and wait for replication.`,
        field,
        'ImageNotReplicated',
      );
    }
    return { version, osType: image.osType, osState: image.osState, gen: image.hyperVGeneration };
  }

  /** Creates a VM (an operation that builds its disk and boots it), or updates its tags and owner. */
  async createOrUpdate(
    p: Principal,
    sub: string,
    rg: string,
    name: string,
    input: VmInput,
    pre?: Preconditions,
  ): Promise<{ vm: VirtualMachine; created: boolean; operation?: Operation }> {
    const tags = input.tags === undefined ? undefined : checkTags(input.tags);
    if (input.owner !== undefined && !/^[\w.@+-]{1,128}$/.test(input.owner)) {
      throw invalidParameter(`'${input.owner}' is not a user name (the subject of a labforge token).`, 'properties.owner');
    }
    const existing = await this.repo.byName(this.db, sub, rg, name);
    if (existing) {
      if (!canSeeVm(p, existing)) throw this.notFoundError(rg, name);
      return this.db.transaction().execute(async (tx) => {
        const v = await this.repo.byName(tx, sub, rg, name, true);
        if (!v) throw this.notFoundError(rg, name);
        this.policy.checkNotLabVm(v, 'be changed');
        checkPreconditions(`Virtual machine '${name}'`, v.etag, pre);
        const changed = (
          [
            ['hardwareProfile.vmSize', input.size, v.size],
            ['storageProfile.imageReference.id', input.imageReference, v.imageReference],
            ['osProfile.computerName', input.computerName, v.computerName],
            ['osProfile.adminUsername', input.adminUsername, v.adminUsername ?? undefined],
          ] as const
        ).find(([, want, have]) => want !== undefined && want.toLowerCase() !== (have ?? '').toLowerCase());
        if (changed || (input.location && this.regions.require(input.location).name !== v.location)) {
          const what = changed?.[0] ?? 'location';
          throw new LabforgeError(
            409,
            'PropertyChangeNotAllowed',
            `Changing property '${what}' of an existing VM is not supported. Delete the VM and create it again with the new value.`,
            `properties.${what}`,
          );
        }
        const after = await this.repo.modify(tx, v.key, p, {
          ...(tags !== undefined ? { tags } : {}),
          ...(input.owner !== undefined ? { owner: input.owner } : {}),
        });
        return { vm: publicVm(after), created: false };
      });
    }
    checkVmName(name);
    if (pre?.ifMatch !== undefined) checkPreconditions(`Virtual machine '${name}'`, undefined, pre);
    const group = await this.groups.get(sub, rg);
    const region = this.regions.require(input.location ?? group.location).name;
    const size = findSize(this.settings.sizes, input.size ?? this.settings.defaultSize, 'properties.hardwareProfile.vmSize');
    const img = await this.resolveImage(input.imageReference, region);
    checkIdentity(input, img.osState, img.version.imageName);
    const computerName = computerNameFor(input.computerName, name, img.osType);
    const cloudConfig = parseCustomData(input.customData, img.osState);
    const passwordHash = input.adminPassword ? await hashPassword(input.adminPassword) : null;
    const vmKey = randomUUID();
    // The seed is written now, while the clear password is in hand: it is never stored (only its hash).
    if (img.osState === 'Generalized') {
      await this.disks.writeSeed(vmKey, {
        instanceId: vmKey,
        hostname: computerName,
        osType: img.osType as 'Linux' | 'Windows',
        adminUser: {
          name: input.adminUsername as string,
          ...(input.adminPassword ? { password: input.adminPassword } : {}),
          ...(passwordHash ? { passwordHash } : {}),
          sshPublicKeys: input.sshPublicKeys ?? [],
        },
        cloudConfig,
      });
    }
    const result = await this.db
      .transaction()
      .execute(async (tx) => {
        if (await this.repo.byName(tx, sub, rg, name, true)) {
          throw conflict(`Virtual machine '${name}' was created by another request at the same moment. Read it and retry if needed.`);
        }
        const [vm] = await this.repo.insert(tx, p, [
          {
            key: vmKey,
            subscriptionId: sub,
            resourceGroup: group.name,
            name,
            location: region,
            tags: tags ?? {},
            provisioningState: 'Creating',
            imageReference: input.imageReference as string,
            versionKey: img.version.key,
            exactVersion: versionArmId(img.version),
            osType: img.osType as VmRecord['osType'],
            osState: img.osState as VmRecord['osState'],
            hyperVGeneration: img.gen as VmRecord['hyperVGeneration'],
            size: size[0],
            vcpus: size[1].vcpus,
            memoryMiB: size[1].memoryMiB,
            computerName,
            adminUsername: input.adminUsername ?? null,
            adminPasswordHash: passwordHash,
            sshPublicKeys: input.sshPublicKeys ?? [],
            customData: input.customData ?? null,
            state: 'Starting',
            statusMessage: 'Creating the disk',
            guestPort: img.osType === 'Windows' ? 3389 : 22,
            owner: input.owner ?? p.subject,
            labKey: null,
            vmType: null,
          },
        ]);
        const operation = await this.operations.enqueue(tx, {
          kind: VM_CREATE,
          subscriptionId: sub,
          location: region,
          targetId: vmArmId({ subscriptionId: sub, resourceGroup: group.name, name }),
          input: { vmKey },
          createdBy: p.subject,
        });
        return { vm: publicVm(vm as VmRecord), created: true, operation };
      })
      .catch(async (err: unknown) => {
        await this.disks.removeFolder(vmKey);
        throw err;
      });
    this.operations.notify();
    return result;
  }

  /** Checks that the caller may act on the VM and that no other operation is working on it. */
  private async lockForAction(tx: Transaction<Database>, p: Principal, sub: string, rg: string, name: string, what: string): Promise<VmRecord> {
    const v = await this.repo.byName(tx, sub, rg, name, true);
    if (!v || !canSeeVm(p, v)) throw this.notFoundError(rg, name);
    return this.checkActionable(tx, v, what);
  }

  private async checkActionable(tx: Transaction<Database>, v: VmRecord, what: string): Promise<VmRecord> {
    const active = await this.operations.activeFor(tx, vmRecordArmId(v));
    if (active) {
      throw conflict(
        `Virtual machine '${v.name}' is busy with operation ${active.id} (${active.kind}, ${active.percentComplete}% done). Wait for it to finish, then ${what} again.`,
      );
    }
    if (v.provisioningState !== 'Succeeded') {
      throw conflict(
        `Virtual machine '${v.name}' is ${v.provisioningState}: only a VM that was created successfully can ${what}. Delete it and create it again.`,
      );
    }
    return v;
  }

  /** Starts, stops or restarts a VM: an operation that ends when the driver has done it. */
  async power(p: Principal, sub: string, rg: string, name: string, action: PowerAction): Promise<Operation> {
    // A lab's VM keeps its lab's rules here too: its creator's (or an admin's), the student's own seat, the quota.
    // Checked before the transaction: on SQLite, a read outside it would wait for it forever.
    const seen = await this.repo.byName(this.db, sub, rg, name);
    if (!seen || !canSeeVm(p, seen)) throw this.notFoundError(rg, name);
    await this.policy.checkPower(p, seen, action);
    const op = await this.db.transaction().execute(async (tx) => this.powerRecord(tx, p, await this.lockForAction(tx, p, sub, rg, name, action), action));
    this.operations.notify();
    return op;
  }

  /** The same for a VM found by its key (lab VMs: the lab service has checked who may act on it). */
  async powerByKey(p: Principal, vmKey: string, action: PowerAction): Promise<Operation> {
    const op = await this.db.transaction().execute(async (tx) => {
      const v = await this.repo.byKey(vmKey, tx, true);
      if (!v) throw new LabforgeError(404, 'ResourceNotFound', 'The virtual machine was deleted.');
      return this.powerRecord(tx, p, await this.checkActionable(tx, v, action), action);
    });
    this.operations.notify();
    return op;
  }

  private async powerRecord(tx: Transaction<Database>, p: Principal, v: VmRecord, action: PowerAction): Promise<Operation> {
    if (v.generalized && action !== 'stop') {
      throw conflict(
        `Virtual machine '${v.name}' was generalized: its disk is kept only to be captured as a Generalized image version, and it cannot ${action} any more. Capture it, then delete it.`,
        undefined,
        'OperationNotAllowed',
      );
    }
    await this.repo.update(tx, v.key, { state: TRANSITION[action], statusCode: null, statusMessage: null });
    return this.operations.enqueue(tx, {
      kind: VM_POWER,
      subscriptionId: v.subscriptionId,
      location: v.location,
      targetId: vmRecordArmId(v),
      input: { vmKey: v.key, action },
      createdBy: p.subject,
    });
  }

  /**
   * Marks a stopped VM whose guest was deprovisioned (cloud-init clean, waagent -deprovision, sysprep) as
   * generalized: it can then be captured into a Generalized image definition, and never started again.
   */
  async generalize(p: Principal, sub: string, rg: string, name: string): Promise<void> {
    if (!isStaff(p)) throw forbidden(`Only lab staff (admin or creator) can generalize a VM; '${p.subject}' has role '${p.role}'. Nothing was changed.`);
    await this.db.transaction().execute(async (tx) => {
      const v = await this.lockForAction(tx, p, sub, rg, name, 'be generalized');
      this.policy.checkNotLabVm(v, 'be generalized');
      const live = await this.driver.status(v.key);
      if (live && live.state !== 'Stopped') {
        throw conflict(
          `Virtual machine '${v.name}' is ${live.state}. Deprovision the guest, shut it down (or stop the VM), then generalize it.`,
          undefined,
          'OperationNotAllowed',
        );
      }
      await this.repo.modify(tx, v.key, p, { generalized: true, state: 'Stopped' });
    });
  }

  async delete(p: Principal, sub: string, rg: string, name: string, pre?: Preconditions): Promise<boolean> {
    const v = await this.db.transaction().execute(async (tx) => {
      const found = await this.repo.byName(tx, sub, rg, name, true);
      if (!found || !canSeeVm(p, found)) return undefined;
      if (!isStaff(p)) throw forbidden(`Only lab staff (admin or creator) can delete a VM; '${p.subject}' has role '${p.role}'. Nothing was changed.`);
      this.policy.checkNotLabVm(found, 'be deleted');
      checkPreconditions(`Virtual machine '${name}'`, found.etag, pre);
      const active = await this.operations.activeFor(tx, vmRecordArmId(found));
      if (active && active.kind !== VM_CREATE) {
        throw conflict(`Virtual machine '${found.name}' is busy with operation ${active.id} (${active.kind}). Wait for it to finish, then delete the VM.`);
      }
      if (active) await this.operations.requestCancel(active.id);
      await this.repo.delete(tx, [found.key]);
      return found;
    });
    if (!v) return false;
    await this.disks.remove(v.key);
    await this.collectBases();
    return true;
  }

  // ---- the VMs of labs (the lab services decide who may; the rows are written here) ----

  /** Builds (does not insert) a lab's template or student VM, writing its identity disk unless told to wait. */
  async newLabVm(s: LabVmSpec): Promise<NewVm> {
    const size = findSize(this.settings.sizes, s.size, 'properties.virtualMachineProfile.sku.name');
    const key = randomUUID();
    if (s.osState === 'Generalized' && !s.seedLater && s.admin) {
      await this.disks.writeSeed(key, {
        instanceId: key,
        hostname: s.computerName,
        osType: s.osType as 'Linux' | 'Windows',
        adminUser: {
          name: s.admin.username,
          ...(s.admin.password ? { password: s.admin.password } : {}),
          ...(s.admin.passwordHash ? { passwordHash: s.admin.passwordHash } : {}),
        },
        cloudConfig: parseCustomData(s.customData, s.osState),
      });
    }
    return {
      key,
      subscriptionId: s.lab.subscriptionId,
      resourceGroup: s.lab.resourceGroup,
      name: `labs/${s.lab.name}/${s.vmName}`,
      location: s.lab.location,
      tags: {},
      provisioningState: 'Creating',
      imageReference: s.imageReference,
      versionKey: s.versionKey,
      exactVersion: s.exactVersion,
      osType: s.osType as VmRecord['osType'],
      osState: s.osState as VmRecord['osState'],
      hyperVGeneration: s.hyperVGeneration as VmRecord['hyperVGeneration'],
      size: size[0],
      vcpus: size[1].vcpus,
      memoryMiB: size[1].memoryMiB,
      computerName: s.computerName,
      adminUsername: s.admin?.username ?? null,
      adminPasswordHash: s.admin?.passwordHash ?? null,
      sshPublicKeys: [],
      customData: s.customData ?? null,
      state: s.vmType === 'Template' ? 'Starting' : 'Stopped',
      statusMessage: null,
      guestPort: s.osType === 'Windows' ? 3389 : 22,
      owner: s.owner.toLowerCase(),
      labKey: s.lab.key,
      vmType: s.vmType,
    };
  }

  /** The VMs of a lab as recorded (not reconciled); `owner` keeps one student's, `type` one kind. */
  labVms(labKey: string, q: { owner?: string; type?: 'Template' | 'User' } = {}): Promise<VmRecord[]> {
    return this.repo.listByLab(labKey, q);
  }

  /** Inserts VMs built by `newLabVm` (in the caller's transaction). */
  insertLabVms(db: Db, by: Principal, vms: NewVm[]): Promise<VmRecord[]> {
    return this.repo.insert(db, by, vms);
  }

  /** Deletes VM rows (in the caller's transaction); their files go with `removeFiles` once it commits. */
  deleteRecords(db: Db, keys: string[]): Promise<void> {
    return this.repo.delete(db, keys);
  }

  deleteLabRecords(db: Db, labKey: string): Promise<void> {
    return this.repo.deleteByLab(db, labKey);
  }

  /** Stops VMs and removes everything they have on this host (their rows are gone or going). */
  async removeFiles(keys: string[]): Promise<void> {
    for (const k of keys) await this.disks.remove(k);
  }

  /** A seat whose disk is made: created and stopped. */
  async markCreated(vmKey: string): Promise<void> {
    await this.repo.update(this.db, vmKey, { provisioningState: 'Succeeded', state: 'Stopped', statusMessage: null });
  }

  /** A VM whose creation failed, with why (in the failing operation's transaction). */
  async markFailed(db: Db, vmKey: string, error: { code: string; message: string }): Promise<void> {
    await this.repo.update(db, vmKey, { provisioningState: 'Failed', state: 'Failed', statusCode: error.code, statusMessage: error.message, baseFile: null });
  }

  /** Gives a VM to someone else (a lab seat to a student, or back to the lab). */
  async reassign(vmKey: string, owner: string): Promise<void> {
    await this.repo.update(this.db, vmKey, { owner });
  }

  /** Seconds a VM has run, counting the current run. */
  async usageSeconds(vmKey: string): Promise<number> {
    return usedSeconds(await this.load(vmKey));
  }

  /** Stores a new admin password hash and a fresh identity disk, so the guest applies it at its next start. */
  async setPassword(vmKey: string, passwordHash: string): Promise<void> {
    await this.repo.update(this.db, vmKey, { adminPasswordHash: passwordHash, state: 'ResettingPassword' });
    try {
      await this.ensureSeed(vmKey, true);
    } finally {
      await this.repo.update(this.db, vmKey, { state: 'Stopped' });
    }
  }

  /** Starts a VM now, without an operation of its own (the lab's creation starts its template). */
  async startNow(vmKey: string): Promise<void> {
    await this.driver.start(vmKey);
  }

  /** Records a VM that an operation created and started (`status`: the driver's, read before the transaction). */
  async settleCreated(db: Db, vmKey: string, status: VmStatus | undefined): Promise<void> {
    await this.settle(db, vmKey, status, null, { provisioningState: 'Succeeded' });
  }

  /**
   * Removes what this host keeps for VMs the database does not know (a crash between deleting a VM's record and
   * its files, or between writing a new VM's identity disk and its record): their disk folders and driver
   * entries, for folders older than `minAgeMs` (a VM being created right now has its folder a moment before its
   * record). A VM's driver entry goes with its folder, which outlives it (files are removed driver first).
   */
  async removeOrphans(minAgeMs: number): Promise<string[]> {
    const known = await this.repo.keys();
    const now = Date.now();
    const orphans = (await this.disks.folders()).filter((f) => !known.has(f.key) && now - f.modifiedMs >= minAgeMs).map((f) => f.key);
    for (const key of orphans) await this.disks.remove(key);
    if (orphans.length) await this.collectBases();
    return orphans;
  }

  /** Removes materialised bases no VM uses any more. */
  async collectBases(): Promise<string[]> {
    return this.disks.collectBases(await this.repo.baseFiles());
  }

  async load(vmKey: string, db: Db = this.db): Promise<VmRecord> {
    const v = await this.repo.byKey(vmKey, db);
    if (!v) throw new LabforgeError(404, 'ResourceNotFound', 'The virtual machine this operation works on was deleted.');
    return v;
  }

  // ---- state reconciliation ----

  /** Brings a settled recorded state in line with what the driver sees (the guest may have shut itself down). */
  async reconcileRecord(v: VmRecord): Promise<VmRecord> {
    if (v.provisioningState !== 'Succeeded' || !SETTLED.includes(v.state)) return v;
    const live = await this.liveStatus(v.key);
    // A transition the driver is making on its own (a restart under software emulation) is shown, not recorded.
    if (live && !SETTLED.includes(live.state)) return { ...v, state: live.state };
    const state: VmState = live ? live.state : 'Failed';
    const hostPort = live?.hostPort ?? v.hostPort;
    const reason = statusReason(live);
    const reasonChanged = reason ? reason.code !== v.statusCode || reason.message !== v.statusMessage : v.statusCode !== null && state !== v.state;
    if (state === v.state && hostPort === v.hostPort && !reasonChanged) return v;
    const change: VmChange = {
      state,
      hostPort,
      ...(reason || state !== v.state ? { statusCode: reason?.code ?? null, statusMessage: reason?.message ?? null } : {}),
      ...usageChange(v, state),
    };
    await this.repo.updateIfState(v.key, v.state, change);
    return { ...v, ...change } as VmRecord;
  }

  /** The driver's view of a VM; a driver that cannot answer reads as a failed VM with the reason. */
  private async liveStatus(vmKey: string): Promise<VmStatus | undefined> {
    try {
      return (await this.driver.status(vmKey)) ?? missingOnHost(vmKey);
    } catch (err) {
      return {
        id: vmKey,
        state: 'Failed',
        serialLog: '',
        error: { code: 'HostUnavailable', message: `The VM's host does not answer: ${(err as Error).message}. Check the host, then read the VM again.` },
      };
    }
  }

  /**
   * Run at server start: VMs kept running while the server was down; each
   * recorded state is checked against the driver. A transition that an
   * operation still owns is left to it (the worker resumes the operation).
   */
  async reconcile(): Promise<{ running: number; stopped: number; changed: string[] }> {
    const changed: string[] = [];
    let running = 0;
    let stopped = 0;
    for (const v of await this.repo.all()) {
      let cur = v;
      if (!SETTLED.includes(v.state) && v.provisioningState === 'Succeeded') {
        const active = await this.operations.activeFor(this.db, vmRecordArmId(v));
        if (!active) {
          const live = await this.liveStatus(v.key);
          const state = live && SETTLED.includes(live.state) ? live.state : 'Failed';
          cur = { ...v, state };
          await this.repo.update(this.db, v.key, { state });
        }
      }
      const after = await this.reconcileRecord(cur);
      if (after.state !== v.state) changed.push(`${v.name}: ${v.state} -> ${after.state}`);
      if (after.state === 'Running') running++;
      else if (after.state === 'Stopped') stopped++;
    }
    return { running, stopped, changed };
  }

  // ---- disks and power, as the jobs run them ----

  /**
   * Builds a VM's disk (base, overlay) and registers it with the driver. The identity disk of a Generalized
   * image is attached when it exists; `ensureSeed` makes it from the stored hash when it does not.
   */
  async provisionDisk(vmKey: string, progress: (percent: number, message: string) => Promise<void> = async () => {}): Promise<void> {
    const v = await this.load(vmKey);
    await progress(10, 'Preparing the base disk');
    const { store, disk } = await osDiskOf(this.imageStores, v);
    const base = await this.disks.provision(v.key, store, disk);
    await this.repo.update(this.db, v.key, { baseFile: base });
    await this.disks.define(v.key, v);
    await progress(60, 'Disk ready');
  }

  /** A Generalized VM without its identity disk gets one from what is stored (the password only as a hash). */
  async ensureSeed(vmKey: string, fresh = false): Promise<void> {
    const v = await this.load(vmKey);
    if (v.osState !== 'Generalized' || (!fresh && this.disks.hasSeed(v.key))) return;
    if (!v.adminUsername || (!v.adminPasswordHash && v.sshPublicKeys.length === 0)) {
      throw new LabforgeError(409, 'SeedMissing', 'This VM has no admin credentials to give the guest; delete it and create it again with credentials.');
    }
    await this.disks.writeSeed(v.key, {
      // A new instance id makes cloud-init apply the user data again (a password reset).
      instanceId: fresh ? `${v.key}-${Date.now().toString(36)}` : v.key,
      hostname: v.computerName,
      osType: v.osType,
      adminUser: {
        name: v.adminUsername,
        ...(v.adminPasswordHash ? { passwordHash: v.adminPasswordHash } : {}),
        sshPublicKeys: v.sshPublicKeys,
      },
      ...(v.customData ? { cloudConfig: parseCustomData(v.customData, v.osState) } : {}),
    });
    await this.disks.define(v.key, v);
  }

  /** Does what a power operation asks of the driver and the disks; the state the driver ends in. */
  async applyPower(vmKey: string, action: PowerAction): Promise<VmStatus> {
    if (action === 'start' || action === 'restart' || action === 'redeploy') await this.ensureSeed(vmKey);
    if (action === 'start') return this.driver.start(vmKey);
    if (action === 'restart') return this.driver.restart(vmKey);
    if (action === 'redeploy') {
      await this.driver.stop(vmKey, { force: true });
      return this.driver.start(vmKey);
    }
    if (action === 'reimage') {
      // Everything the guest wrote is dropped: a new empty overlay on the same base; the VM ends stopped.
      await this.driver.stop(vmKey, { force: true });
      const { store, disk } = await osDiskOf(this.imageStores, await this.load(vmKey));
      await this.disks.reimage(vmKey, store, disk);
      return (await this.driver.status(vmKey)) as VmStatus;
    }
    return this.driver.stop(vmKey, { timeoutMs: this.settings.stopTimeoutMs });
  }

  /** Records the state the driver reports after an operation, with its reason (or the operation's error). */
  async settle(db: Db, vmKey: string, status: VmStatus | undefined, failure: { code: string; message: string } | null, extra: VmChange = {}): Promise<void> {
    const v = await this.repo.byKey(vmKey, db);
    const live = status ?? missingOnHost(vmKey);
    const state = live.state;
    // The driver's reason wins (it knows why QEMU failed); otherwise the operation's error, if any.
    const reason = statusReason(live) ?? failure ?? undefined;
    await this.repo.update(db, vmKey, {
      state,
      hostPort: live.hostPort ?? null,
      statusCode: reason?.code ?? null,
      statusMessage: reason?.message ?? null,
      ...(v ? usageChange(v, state) : {}),
      ...extra,
    });
  }
}
