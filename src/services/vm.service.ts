// Virtual machines made from gallery image versions: each is a qcow2 overlay
// on a base materialised from its region's chunks, booted by the compute
// driver. The database records what was asked (image, size, identity) and the
// power state; the driver knows what really runs, and the two are reconciled
// at server start and whenever a VM is read.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely, Transaction } from 'kysely';
import YAML from 'yaml';
import { BaseCache } from '../compute/bases.js';
import { type CaptureStats, captureOverlay } from '../compute/capture.js';
import type { ComputeDriver, VmState, VmStatus } from '../compute/compute-driver.js';
import { buildSeed, hashPassword } from '../compute/qemu/seed.js';
import type { ComputeConfig } from '../config/config.js';
import type { Database, Db, VirtualMachineTable } from '../db/schema.js';
import { conflict, forbidden, invalidParameter, LabforgeError, notFound } from '../errors.js';
import type { ChunkStore, DiskManifest } from '../imagestore/chunk-store.js';
import { versionArmId, vmArmId } from '../lib/arm-id.js';
import { nowIso } from '../lib/time.js';
import type { Operation, OperationStore } from '../operations/operation.store.js';
import type { OperationHandler } from '../operations/worker.js';
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
import type { ImageVersion, ImageVersionService } from './image-version.service.js';
import type { ResourceGroupService } from './resource-group.service.js';

/** Console tickets are kept hashed, like tokens. */
const ticketHash = (ticket: string) => createHash('sha256').update(ticket).digest('hex');

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
const DOING: Record<PowerAction, string> = {
  start: 'Starting the VM',
  stop: 'Stopping the VM',
  restart: 'Restarting the VM',
  reimage: 'Reimaging the VM: a fresh disk from its image version',
  redeploy: 'Redeploying the VM: a new QEMU process on the same disk',
};

export interface VirtualMachine extends ResourceMeta {
  imageReference: string;
  exactVersion: string;
  osType: 'Linux' | 'Windows';
  osState: 'Generalized' | 'Specialized';
  hyperVGeneration: 'V1' | 'V2';
  size: string;
  vcpus: number;
  memoryMiB: number;
  computerName: string;
  adminUsername: string | null;
  sshPublicKeys: string[];
  state: VmState;
  /** Why the VM is Failed, or what its user should know while it runs (SoftwareEmulationFallback); null otherwise. */
  statusCode: string | null;
  statusMessage: string | null;
  /** Host port forwarded to the guest's SSH (Linux) or RDP (Windows) port, while running. */
  hostPort: number | null;
  guestPort: number;
  /** The guest was deprovisioned and the VM marked generalized: it can only be captured or deleted. */
  generalized: boolean;
  owner: string;
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

/** What a capture needs to know about the VM it reads. */
export interface CaptureSource {
  vmKey: string;
  location: string;
  generalized: boolean;
  osType: string;
  hyperVGeneration: string;
}

/** The ARM id of a VM row: a Compute VM, or a lab's VM (rows named `labs/<lab>/<vm>`). */
export function armIdOf(r: Pick<VirtualMachineTable, 'subscription_id' | 'resource_group' | 'name' | 'lab_id'>): string {
  if (r.lab_id) {
    const [, lab, vm] = r.name.split('/');
    return `/subscriptions/${r.subscription_id}/resourceGroups/${r.resource_group}/providers/Microsoft.LabServices/labs/${lab}/virtualMachines/${vm}`;
  }
  return vmArmId({ subscriptionId: r.subscription_id, resourceGroup: r.resource_group, name: r.name });
}

const LAB_VM_ARM_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.LabServices\/labs\/([^/]+)\/virtualMachines\/([^/]+)$/i;
const VM_ARM_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachines\/([^/]+)$/i;
const IMAGE_ARM_ID =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/images\/([^/]+)(?:\/versions\/([^/]+))?$/i;
const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}[A-Za-z0-9]$|^[A-Za-z0-9]$/;
const COMPUTER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const RESERVED_USERS = new Set(['root', 'admin', 'administrator', 'daemon', 'bin', 'sys', 'nobody', 'guest']);
const SETTLED: readonly VmState[] = ['Running', 'Stopped', 'Failed'];

export const vmToDomain = (r: VirtualMachineTable): VirtualMachine => toVm(r);

const toVm = (r: VirtualMachineTable): VirtualMachine =>
  Object.assign(resourceMeta(r), {
    imageReference: r.image_reference,
    exactVersion: r.exact_version,
    osType: r.os_type as VirtualMachine['osType'],
    osState: r.os_state as VirtualMachine['osState'],
    hyperVGeneration: r.hyper_v_generation as VirtualMachine['hyperVGeneration'],
    size: r.size,
    vcpus: r.vcpus,
    memoryMiB: r.memory_mib,
    computerName: r.computer_name,
    adminUsername: r.admin_username,
    sshPublicKeys: JSON.parse(r.ssh_public_keys) as string[],
    state: r.state as VmState,
    statusCode: r.status_code,
    statusMessage: r.status_message,
    hostPort: r.state === 'Running' ? r.host_port : null,
    guestPort: r.guest_port,
    generalized: r.generalized === 1,
    owner: r.owner,
  });

const isStaff = (p: Principal) => p.role === 'admin' || p.role === 'creator';

/** The running-time bookkeeping that goes with a state change: a run starts, or its time is added up. */
function usageUpdate(r: Pick<VirtualMachineTable, 'running_since' | 'usage_seconds'>, state: string): Partial<VirtualMachineTable> {
  if (state === 'Running') return r.running_since ? {} : { running_since: nowIso() };
  if (!r.running_since) return {};
  const ran = Math.max(0, Math.round((Date.now() - Date.parse(r.running_since)) / 1000));
  return { running_since: null, usage_seconds: r.usage_seconds + ran };
}

/** A lab VM to insert: what `prepareLabVm` needs to know. */
export interface LabVmSpec {
  lab: { id: string; subscription_id: string; resource_group: string; name: string; location: string };
  vmName: string;
  vmType: 'Template' | 'User';
  /** The manifest the VM's disk is built on: an image version's row id or a lab snapshot's name. */
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

export class VmService {
  readonly bases: BaseCache;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly groups: ResourceGroupService,
    private readonly galleries: GalleryService,
    private readonly versions: ImageVersionService,
    private readonly regions: RegionCatalog,
    private readonly operations: OperationStore,
    private readonly imageStores: Map<string, ChunkStore>,
    readonly driver: ComputeDriver,
    private readonly settings: ComputeConfig & { tmpDir: string },
  ) {
    this.bases = new BaseCache(join(settings.dir, 'bases'));
  }

  private diskDir(vmKey: string): string {
    return join(this.settings.dir, 'disks', vmKey);
  }

  /** The host name people connect to for VMs' forwarded SSH/RDP ports. */
  get connectHost(): string {
    return this.settings.connectHost;
  }

  overlayPath(vmKey: string): string {
    return join(this.diskDir(vmKey), 'os.qcow2');
  }

  private notFoundError(rg: string, name: string) {
    return notFound('ResourceNotFound', `The Resource 'Microsoft.Compute/virtualMachines/${name}' under resource group '${rg}' was not found.`);
  }

  private async row(db: Db, sub: string, rg: string, name: string, lock = false) {
    const q = db
      .selectFrom('virtual_machines')
      .selectAll()
      .where('subscription_id', '=', sub)
      .where('resource_group_key', '=', keyOf(rg))
      .where('name_key', '=', keyOf(name));
    return (lock ? forUpdate(db, q) : q).executeTakeFirst();
  }

  /** Students see only their own VMs; to them another's VM does not exist. */
  private visible(p: Principal, r: VirtualMachineTable | undefined): r is VirtualMachineTable {
    return r !== undefined && (isStaff(p) || r.owner === p.subject);
  }

  async get(p: Principal, sub: string, rg: string, name: string): Promise<VirtualMachine> {
    const r = await this.row(this.db, sub, rg, name);
    if (!this.visible(p, r)) throw this.notFoundError(rg, name);
    return toVm(await this.reconcileRow(r));
  }

  async list(p: Principal, sub: string, rg: string | undefined, after: string | undefined, limit: number): Promise<VirtualMachine[]> {
    let q = this.db.selectFrom('virtual_machines').selectAll().where('subscription_id', '=', sub).where('lab_id', 'is', null);
    if (rg !== undefined) {
      await this.groups.get(sub, rg);
      q = q.where('resource_group_key', '=', keyOf(rg));
    }
    if (!isStaff(p)) q = q.where('owner', '=', p.subject);
    if (after) q = q.where('id', '>', after);
    const rows = await q.orderBy('id').limit(limit).execute();
    const out: VirtualMachine[] = [];
    for (const r of rows) out.push(toVm(await this.reconcileRow(r)));
    return out;
  }

  /** Resolves a gallery image or image version id to the version a new VM boots. */
  private async resolveImage(ref: string | undefined, region: string): Promise<{ version: ImageVersion; osType: string; osState: string; gen: string }> {
    const field = 'properties.storageProfile.imageReference.id';
    const m = ref ? IMAGE_ARM_ID.exec(ref) : null;
    if (!m) {
      throw invalidParameter(
        `${field} must be the id of a gallery image definition (its latest version is used) or of one of its versions, such as /subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/galleries/<g>/images/<i>/versions/1.0.0.`,
        field,
      );
    }
    const [, s, rg, g, i, v] = m as unknown as [string, string, string, string, string, string | undefined];
    let version: ImageVersion;
    let image: Awaited<ReturnType<GalleryService['getImage']>>;
    try {
      image = await this.galleries.getImage(s, rg, g, i);
      version = await this.versions.get(s, rg, g, i, v ?? 'latest');
    } catch (err) {
      if (err instanceof LabforgeError && err.status === 404) throw invalidParameter(`The image '${ref}' cannot be used: ${err.message}`, field);
      throw err;
    }
    if (version.provisioningState !== 'Succeeded' && version.provisioningState !== 'Updating') {
      throw conflict(`Image version ${version.name} is ${version.provisioningState}; wait until it has Succeeded, then retry.`, field);
    }
    if (version.replication[region]?.state !== 'Completed') {
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

  private checkIdentity(input: VmInput, osState: string, imageName: string): void {
    const given = input.adminUsername !== undefined || input.adminPassword !== undefined || (input.sshPublicKeys?.length ?? 0) > 0;
    if (osState === 'Specialized') {
      if (given) {
        throw invalidParameter(
          `Image '${imageName}' is Specialized: its VMs boot as exact copies and keep the image's own accounts and passwords, so osProfile credentials (adminUsername, adminPassword, SSH keys) must not be given. Remove them, or use a Generalized image to set new credentials.`,
          'properties.osProfile',
        );
      }
      return;
    }
    if (!input.adminUsername || (!input.adminPassword && !input.sshPublicKeys?.length)) {
      throw new LabforgeError(
        400,
        'CredentialsRequired',
        `Image '${imageName}' is Generalized: each VM gets its own identity at first boot, so it needs an admin user. Give properties.osProfile.adminUsername and an adminPassword or an SSH public key (linuxConfiguration.ssh.publicKeys).`,
        'properties.osProfile.adminUsername',
      );
    }
    if (!USER_NAME.test(input.adminUsername) || RESERVED_USERS.has(input.adminUsername)) {
      throw invalidParameter(
        `'${input.adminUsername}' cannot be the admin user name: use 1-32 lower-case letters, digits, '_' or '-', starting with a letter or '_', and not a reserved name (${[...RESERVED_USERS].join(', ')}).`,
        'properties.osProfile.adminUsername',
      );
    }
    if (input.adminPassword !== undefined) {
      const pw = input.adminPassword;
      const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(pw)).length;
      if (pw.length < 8 || pw.length > 123 || classes < 3) {
        throw invalidParameter(
          'The admin password must be 8-123 characters and contain three of: a lower-case letter, an upper-case letter, a digit, a special character.',
          'properties.osProfile.adminPassword',
        );
      }
    }
    for (const k of input.sshPublicKeys ?? []) {
      if (!/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+( .*)?$/.test(k.trim())) {
        throw invalidParameter(
          'An SSH public key is not in OpenSSH format (for example "ssh-ed25519 AAAA... user@host").',
          'properties.osProfile.linuxConfiguration.ssh.publicKeys',
        );
      }
    }
  }

  /** Creates a VM (an operation that builds its disk and boots it), or updates its tags. */
  async createOrUpdate(
    p: Principal,
    sub: string,
    rg: string,
    name: string,
    input: VmInput,
    pre?: Preconditions,
  ): Promise<{ vm: VirtualMachine; created: boolean; operation?: Operation }> {
    if (!VM_NAME.test(name)) {
      throw invalidParameter(
        `The VM name '${name}' is not valid: use 1-64 letters, digits or hyphens, starting and ending with a letter or digit.`,
        'virtualMachineName',
      );
    }
    const tags = input.tags === undefined ? undefined : checkTags(input.tags);
    if (input.owner !== undefined && !/^[\w.@+-]{1,128}$/.test(input.owner)) {
      throw invalidParameter(`'${input.owner}' is not a user name (the subject of a labforge token).`, 'properties.owner');
    }
    const existing = await this.row(this.db, sub, rg, name);
    if (existing) {
      if (!this.visible(p, existing)) throw this.notFoundError(rg, name);
      return this.db.transaction().execute(async (tx) => {
        const r = await this.row(tx, sub, rg, name, true);
        if (!r) throw this.notFoundError(rg, name);
        checkPreconditions(`Virtual machine '${name}'`, r.etag, pre);
        const changed = (
          [
            ['hardwareProfile.vmSize', input.size, r.size],
            ['storageProfile.imageReference.id', input.imageReference, r.image_reference],
            ['osProfile.computerName', input.computerName, r.computer_name],
            ['osProfile.adminUsername', input.adminUsername, r.admin_username ?? undefined],
          ] as const
        ).find(([, want, have]) => want !== undefined && want.toLowerCase() !== (have ?? '').toLowerCase());
        if (changed || (input.location && this.regions.require(input.location).name !== r.location)) {
          const what = changed?.[0] ?? 'location';
          throw new LabforgeError(
            409,
            'PropertyChangeNotAllowed',
            `Changing property '${what}' of an existing VM is not supported. Delete the VM and create it again with the new value.`,
            `properties.${what}`,
          );
        }
        const upd = {
          ...modificationStamp(p),
          ...(tags !== undefined ? { tags: JSON.stringify(tags) } : {}),
          ...(input.owner !== undefined ? { owner: input.owner } : {}),
        };
        await tx.updateTable('virtual_machines').set(upd).where('id', '=', r.id).execute();
        return { vm: toVm({ ...r, ...upd }), created: false };
      });
    }
    if (pre?.ifMatch !== undefined) checkPreconditions(`Virtual machine '${name}'`, undefined, pre);
    const group = await this.groups.get(sub, rg);
    const region = this.regions.require(input.location ?? group.location).name;
    const sizeName = input.size ?? this.settings.defaultSize;
    const size = Object.entries(this.settings.sizes).find(([n]) => n.toLowerCase() === sizeName.toLowerCase());
    if (!size) {
      throw invalidParameter(
        `'${sizeName}' is not a VM size of this server. Use one of: ${Object.keys(this.settings.sizes).join(', ')}.`,
        'properties.hardwareProfile.vmSize',
      );
    }
    const img = await this.resolveImage(input.imageReference, region);
    this.checkIdentity(input, img.osState, img.version.imageName);
    const computerName = input.computerName ?? name.toLowerCase().slice(0, img.osType === 'Windows' ? 15 : 63);
    if (!COMPUTER_NAME.test(computerName) || (img.osType === 'Windows' && computerName.length > 15)) {
      throw invalidParameter(
        `'${computerName}' cannot be a computer name: use letters, digits and hyphens, not starting or ending with a hyphen, at most ${img.osType === 'Windows' ? 15 : 63} characters.`,
        'properties.osProfile.computerName',
      );
    }
    const cloudConfig = parseCustomData(input.customData, img.osState);
    const passwordHash = input.adminPassword ? await hashPassword(input.adminPassword) : null;
    const vmKey = randomUUID();
    // The seed is written now, while the clear password is in hand: it is never stored (only its hash).
    if (img.osState === 'Generalized') {
      await mkdir(this.diskDir(vmKey), { recursive: true });
      await buildSeed(
        {
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
        },
        this.seedPath(vmKey),
      );
    }
    const result = await this.db
      .transaction()
      .execute(async (tx) => {
        if (await this.row(tx, sub, rg, name, true)) {
          throw conflict(`Virtual machine '${name}' was created by another request at the same moment. Read it and retry if needed.`);
        }
        const values: VirtualMachineTable = {
          id: vmKey,
          subscription_id: sub,
          resource_group: group.name,
          resource_group_key: keyOf(group.name),
          name,
          name_key: keyOf(name),
          location: region,
          tags: JSON.stringify(tags ?? {}),
          provisioning_state: 'Creating',
          image_reference: input.imageReference as string,
          version_id: img.version.key,
          exact_version: versionArmId(img.version),
          os_type: img.osType,
          os_state: img.osState,
          hyper_v_generation: img.gen,
          size: size[0],
          vcpus: size[1].vcpus,
          memory_mib: size[1].memoryMiB,
          computer_name: computerName,
          admin_username: input.adminUsername ?? null,
          admin_password_hash: passwordHash,
          ssh_public_keys: JSON.stringify(input.sshPublicKeys ?? []),
          custom_data: input.customData ?? null,
          state: 'Starting',
          status_code: null,
          status_message: 'Creating the disk',
          host_port: null,
          guest_port: img.osType === 'Windows' ? 3389 : 22,
          generalized: 0,
          owner: input.owner ?? p.subject,
          base_file: null,
          lab_id: null,
          vm_type: null,
          usage_seconds: 0,
          running_since: null,
          ...creationStamp(p),
        };
        await tx.insertInto('virtual_machines').values(values).execute();
        const operation = await this.operations.enqueue(tx, {
          kind: VM_CREATE,
          subscriptionId: sub,
          location: region,
          targetId: vmArmId({ subscriptionId: sub, resourceGroup: group.name, name }),
          input: { vmKey: values.id },
          createdBy: p.subject,
        });
        return { vm: toVm(values), created: true, operation };
      })
      .catch(async (err: unknown) => {
        await rm(this.diskDir(vmKey), { recursive: true, force: true });
        throw err;
      });
    this.operations.notify();
    return result;
  }

  /** Checks that the caller may act on the VM and that no other operation is working on it. */
  private async lockForAction(tx: Transaction<Database>, p: Principal, sub: string, rg: string, name: string, what: string) {
    const r = await this.row(tx, sub, rg, name, true);
    if (!this.visible(p, r)) throw this.notFoundError(rg, name);
    return this.checkActionable(tx, r, what);
  }

  private async checkActionable(tx: Transaction<Database>, r: VirtualMachineTable, what: string) {
    const active = await this.operations.activeFor(tx, armIdOf(r));
    if (active) {
      throw conflict(
        `Virtual machine '${r.name}' is busy with operation ${active.id} (${active.kind}, ${active.percentComplete}% done). Wait for it to finish, then ${what} again.`,
      );
    }
    if (r.provisioning_state !== 'Succeeded') {
      throw conflict(
        `Virtual machine '${r.name}' is ${r.provisioning_state}: only a VM that was created successfully can ${what}. Delete it and create it again.`,
      );
    }
    return r;
  }

  /** Starts, stops or restarts a VM: an operation that ends when the driver has done it. */
  async power(p: Principal, sub: string, rg: string, name: string, action: PowerAction): Promise<Operation> {
    const op = await this.db.transaction().execute(async (tx) => this.powerRow(tx, p, await this.lockForAction(tx, p, sub, rg, name, action), action));
    this.operations.notify();
    return op;
  }

  /** The same for a VM found by its key (lab VMs: the lab service has checked who may act on it). */
  async powerByKey(p: Principal, vmKey: string, action: PowerAction): Promise<Operation> {
    const op = await this.db.transaction().execute(async (tx) => {
      const r = await forUpdate(tx, tx.selectFrom('virtual_machines').selectAll().where('id', '=', vmKey)).executeTakeFirst();
      if (!r) throw new LabforgeError(404, 'ResourceNotFound', 'The virtual machine was deleted.');
      return this.powerRow(tx, p, await this.checkActionable(tx, r, action), action);
    });
    this.operations.notify();
    return op;
  }

  private async powerRow(tx: Transaction<Database>, p: Principal, r: VirtualMachineTable, action: PowerAction): Promise<Operation> {
    {
      if (r.generalized && action !== 'stop') {
        throw conflict(
          `Virtual machine '${r.name}' was generalized: its disk is kept only to be captured as a Generalized image version, and it cannot ${action} any more. Capture it, then delete it.`,
          undefined,
          'OperationNotAllowed',
        );
      }
      const state = TRANSITION[action];
      await tx.updateTable('virtual_machines').set({ state, status_code: null, status_message: null }).where('id', '=', r.id).execute();
      return this.operations.enqueue(tx, {
        kind: VM_POWER,
        subscriptionId: r.subscription_id,
        location: r.location,
        targetId: armIdOf(r),
        input: { vmKey: r.id, action },
        createdBy: p.subject,
      });
    }
  }

  /**
   * Marks a stopped VM whose guest was deprovisioned (cloud-init clean, waagent -deprovision, sysprep) as
   * generalized: it can then be captured into a Generalized image definition, and never started again.
   */
  async generalize(p: Principal, sub: string, rg: string, name: string): Promise<void> {
    if (!isStaff(p)) throw forbidden(`Only lab staff (admin or creator) can generalize a VM; '${p.subject}' has role '${p.role}'. Nothing was changed.`);
    await this.db.transaction().execute(async (tx) => {
      const r = await this.lockForAction(tx, p, sub, rg, name, 'be generalized');
      const live = await this.driver.status(r.id);
      if (live && live.state !== 'Stopped') {
        throw conflict(
          `Virtual machine '${r.name}' is ${live.state}. Deprovision the guest, shut it down (or stop the VM), then generalize it.`,
          undefined,
          'OperationNotAllowed',
        );
      }
      await tx
        .updateTable('virtual_machines')
        .set({ generalized: 1, state: 'Stopped', ...modificationStamp(p) })
        .where('id', '=', r.id)
        .execute();
    });
  }

  async delete(p: Principal, sub: string, rg: string, name: string, pre?: Preconditions): Promise<boolean> {
    const r = await this.db.transaction().execute(async (tx) => {
      const row = await this.row(tx, sub, rg, name, true);
      if (!this.visible(p, row)) return undefined;
      if (!isStaff(p)) throw forbidden(`Only lab staff (admin or creator) can delete a VM; '${p.subject}' has role '${p.role}'. Nothing was changed.`);
      checkPreconditions(`Virtual machine '${name}'`, row.etag, pre);
      const active = await this.operations.activeFor(tx, armIdOf(row));
      if (active && active.kind !== VM_CREATE) {
        throw conflict(`Virtual machine '${row.name}' is busy with operation ${active.id} (${active.kind}). Wait for it to finish, then delete the VM.`);
      }
      if (active) await this.operations.requestCancel(active.id);
      await tx.deleteFrom('virtual_machines').where('id', '=', row.id).execute();
      return row;
    });
    if (!r) return false;
    await this.removeFiles(r.id);
    return true;
  }

  /** Builds (does not insert) the row of a lab's template or student VM, writing its identity disk unless told to wait. */
  async prepareLabVm(p: Principal, s: LabVmSpec): Promise<VirtualMachineTable> {
    const size = Object.entries(this.settings.sizes).find(([n]) => n.toLowerCase() === s.size.toLowerCase());
    if (!size) {
      throw invalidParameter(
        `'${s.size}' is not a VM size of this server. Use one of: ${Object.keys(this.settings.sizes).join(', ')}.`,
        'properties.virtualMachineProfile.sku.name',
      );
    }
    const id = randomUUID();
    if (s.osState === 'Generalized' && !s.seedLater && s.admin) {
      await mkdir(this.diskDir(id), { recursive: true });
      await buildSeed(
        {
          instanceId: id,
          hostname: s.computerName,
          osType: s.osType as 'Linux' | 'Windows',
          adminUser: {
            name: s.admin.username,
            ...(s.admin.password ? { password: s.admin.password } : {}),
            ...(s.admin.passwordHash ? { passwordHash: s.admin.passwordHash } : {}),
          },
          cloudConfig: parseCustomData(s.customData, s.osState),
        },
        this.seedPath(id),
      );
    }
    const name = `labs/${s.lab.name}/${s.vmName}`;
    return {
      id,
      subscription_id: s.lab.subscription_id,
      resource_group: s.lab.resource_group,
      resource_group_key: keyOf(s.lab.resource_group),
      name,
      name_key: keyOf(name),
      location: s.lab.location,
      tags: '{}',
      provisioning_state: 'Creating',
      image_reference: s.imageReference,
      version_id: s.versionKey,
      exact_version: s.exactVersion,
      os_type: s.osType,
      os_state: s.osState,
      hyper_v_generation: s.hyperVGeneration,
      size: size[0],
      vcpus: size[1].vcpus,
      memory_mib: size[1].memoryMiB,
      computer_name: s.computerName,
      admin_username: s.admin?.username ?? null,
      admin_password_hash: s.admin?.passwordHash ?? null,
      ssh_public_keys: '[]',
      custom_data: s.customData ?? null,
      state: s.vmType === 'Template' ? 'Starting' : 'Stopped',
      status_code: null,
      status_message: null,
      host_port: null,
      guest_port: s.osType === 'Windows' ? 3389 : 22,
      generalized: 0,
      owner: s.owner.toLowerCase(),
      base_file: null,
      lab_id: s.lab.id,
      vm_type: s.vmType,
      usage_seconds: 0,
      running_since: null,
      ...creationStamp(p),
    };
  }

  /** Stops a VM and removes everything it has on this host (its row is the caller's). */
  async removeVmFiles(vmKey: string): Promise<void> {
    await this.driver.delete(vmKey);
    await rm(this.diskDir(vmKey), { recursive: true, force: true });
  }

  /** Seconds a VM has run, counting the current run. */
  async usageSeconds(vmKey: string): Promise<number> {
    const r = await this.load(this.db, vmKey);
    return r.usage_seconds + (r.running_since ? Math.max(0, Math.round((Date.now() - Date.parse(r.running_since)) / 1000)) : 0);
  }

  /** Stores a new admin password hash and a fresh identity disk, so the guest applies it at its next start. */
  async setPassword(vmKey: string, passwordHash: string): Promise<void> {
    await this.db.updateTable('virtual_machines').set({ admin_password_hash: passwordHash, state: 'ResettingPassword' }).where('id', '=', vmKey).execute();
    try {
      await this.ensureSeed(vmKey, true);
    } finally {
      await this.db.updateTable('virtual_machines').set({ state: 'Stopped' }).where('id', '=', vmKey).execute();
    }
  }

  /** Records a VM that a lab operation created and started. */
  async settleCreated(db: Db, vmKey: string, status: VmStatus | undefined): Promise<void> {
    await this.settle(db, vmKey, status, null, { provisioning_state: 'Succeeded' });
  }

  /** A read of one row, reconciled with the driver. */
  reconcile1(r: VirtualMachineTable): Promise<VirtualMachineTable> {
    return this.reconcileRow(r);
  }

  private async removeFiles(vmKey: string): Promise<void> {
    await this.driver.delete(vmKey);
    await rm(this.diskDir(vmKey), { recursive: true, force: true });
    await this.collectBases();
  }

  /** Removes materialised bases no VM uses any more. */
  async collectBases(): Promise<string[]> {
    const rows = await this.db.selectFrom('virtual_machines').select('base_file').execute();
    return this.bases.collect(new Set(rows.map((r) => r.base_file).filter((b): b is string => b !== null)));
  }

  // ---- state reconciliation ----

  /** Brings a settled recorded state in line with what the driver sees (the guest may have shut itself down). */
  private async reconcileRow(r: VirtualMachineTable): Promise<VirtualMachineTable> {
    if (r.provisioning_state !== 'Succeeded' || !SETTLED.includes(r.state as VmState)) return r;
    const live = await this.liveStatus(r.id);
    // A transition the driver is making on its own (a restart under software emulation) is shown, not recorded.
    if (live && !SETTLED.includes(live.state)) return { ...r, state: live.state };
    const state: VmState = live ? live.state : 'Failed';
    const hostPort = live?.hostPort ?? r.host_port;
    const reason = statusReason(live);
    const reasonChanged = reason ? reason.code !== r.status_code || reason.message !== r.status_message : r.status_code !== null && state !== r.state;
    if (state === r.state && hostPort === r.host_port && !reasonChanged) return r;
    const upd = {
      state,
      host_port: hostPort,
      ...(reason || state !== r.state ? { status_code: reason?.code ?? null, status_message: reason?.message ?? null } : {}),
      ...usageUpdate(r, state),
    };
    await this.db.updateTable('virtual_machines').set(upd).where('id', '=', r.id).where('state', '=', r.state).execute();
    return { ...r, ...upd };
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
    const rows = await this.db.selectFrom('virtual_machines').selectAll().execute();
    const changed: string[] = [];
    let running = 0;
    let stopped = 0;
    for (const r of rows) {
      let cur = r;
      if (!SETTLED.includes(r.state as VmState) && r.provisioning_state === 'Succeeded') {
        const active = await this.operations.activeFor(this.db, armIdOf(r));
        if (!active) {
          const live = await this.liveStatus(r.id);
          const state = live && SETTLED.includes(live.state) ? live.state : 'Failed';
          cur = { ...r, state };
          await this.db.updateTable('virtual_machines').set({ state }).where('id', '=', r.id).execute();
        }
      }
      const after = await this.reconcileRow(cur);
      if (after.state !== r.state) changed.push(`${r.name}: ${r.state} -> ${after.state}`);
      if (after.state === 'Running') running++;
      else if (after.state === 'Stopped') stopped++;
    }
    return { running, stopped, changed };
  }

  // ---- console ----

  /** A short-lived ticket to open the VM's console over WebSocket (browsers cannot send an Authorization header there). */
  async consoleTicket(p: Principal, sub: string, rg: string, name: string): Promise<{ ticket: string; expiresAt: string; vm: VirtualMachine }> {
    return this.ticketFor(await this.get(p, sub, rg, name));
  }

  /** A console ticket for a VM the caller may see (the check is the caller's). */
  async ticketFor(vm: VirtualMachine): Promise<{ ticket: string; expiresAt: string; vm: VirtualMachine }> {
    if (vm.state !== 'Running') {
      throw conflict(`Virtual machine '${vm.name}' is ${vm.state}; start it to open its console.`, undefined, 'OperationNotAllowed');
    }
    const now = Date.now();
    const ticket = randomBytes(24).toString('base64url');
    const expires = now + 60_000;
    // Kept in the database (hashed, like tokens): another server process sharing it can redeem the ticket.
    await this.db.deleteFrom('console_tickets').where('expires_at', '<', new Date(now).toISOString()).execute();
    await this.db
      .insertInto('console_tickets')
      .values({ ticket_hash: ticketHash(ticket), vm_key: vm.key, expires_at: new Date(expires).toISOString(), kinds: 'vnc,serial' })
      .execute();
    return { ticket, expiresAt: new Date(expires).toISOString(), vm };
  }

  /** Consumes a ticket for one console channel; each ticket opens each channel once, within a minute. */
  async redeemTicket(ticket: string, kind: 'vnc' | 'serial'): Promise<VmStatus> {
    const invalid = () =>
      new LabforgeError(
        401,
        'InvalidConsoleTicket',
        'The console ticket is unknown, expired (tickets last one minute) or already used. Ask for a new one with POST .../virtualMachines/{vm}/console.',
      );
    const hash = ticketHash(ticket);
    const t = await this.db.selectFrom('console_tickets').selectAll().where('ticket_hash', '=', hash).executeTakeFirst();
    const kinds = t ? t.kinds.split(',').filter(Boolean) : [];
    if (!t || t.expires_at < new Date().toISOString() || !kinds.includes(kind)) throw invalid();
    // Only one of two redeemers racing for the same channel gets it.
    const used = await this.db
      .updateTable('console_tickets')
      .set({ kinds: kinds.filter((k) => k !== kind).join(',') })
      .where('ticket_hash', '=', hash)
      .where('kinds', '=', t.kinds)
      .executeTakeFirst();
    if (Number(used.numUpdatedRows) !== 1) throw invalid();
    const status = await this.driver.status(t.vm_key);
    if (status?.state !== 'Running') throw conflict('The VM is not running any more; start it and open the console again.');
    return status;
  }

  // ---- capture ----

  /** Checks a VM can be captured and returns what the capture needs. */
  async captureSource(p: Principal, armId: string, field: string): Promise<CaptureSource> {
    const lab = LAB_VM_ARM_ID.exec(armId);
    const m = lab ?? VM_ARM_ID.exec(armId);
    if (!m) {
      throw invalidParameter(
        `'${armId}' is not a virtual machine id (/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>, or a lab's .../providers/Microsoft.LabServices/labs/<lab>/virtualMachines/<name>).`,
        field,
      );
    }
    const [, sub, rg, first, second] = m as unknown as [string, string, string, string, string];
    const name = lab ? `labs/${first}/${second}` : first;
    const r = await this.row(this.db, sub, rg, name);
    if (!this.visible(p, r)) throw invalidParameter(`The virtual machine '${armId}' does not exist.`, field);
    if (r.provisioning_state !== 'Succeeded')
      throw conflict(`Virtual machine '${r.name}' is ${r.provisioning_state}; only a VM that was created successfully can be captured.`, field);
    return { vmKey: r.id, location: r.location, generalized: r.generalized === 1, osType: r.os_type, hyperVGeneration: r.hyper_v_generation };
  }

  /**
   * Captures the VM's OS disk into `store`: only the blocks its overlay holds are read. A running VM is paused
   * (its disks flushed) for the capture and resumed after.
   */
  async captureDisk(vmKey: string, store: ChunkStore, name: string): Promise<{ disk: DiskManifest; stats: CaptureStats }> {
    const r = await this.db.selectFrom('virtual_machines').selectAll().where('id', '=', vmKey).executeTakeFirst();
    if (!r) throw new LabforgeError(404, 'ResourceNotFound', 'The virtual machine being captured was deleted.');
    const base = await this.baseOf(r);
    const paused = await this.driver.pause(vmKey);
    try {
      return await captureOverlay(store, base, this.overlayPath(vmKey), { name, shared: paused });
    } finally {
      if (paused) await this.driver.resume(vmKey);
    }
  }

  /** The manifest of the VM's OS disk in the VM's region. */
  private async osDiskOf(r: VirtualMachineTable): Promise<DiskManifest> {
    const store = this.imageStores.get(r.location);
    const manifest = await store?.getManifest(r.version_id);
    const disk = manifest?.disks.find((d) => d.name === 'os');
    if (!store || !disk) {
      throw new LabforgeError(
        409,
        'SourceImageMissing',
        `The image version this VM was made from (${r.exact_version}) no longer has a replica in region '${r.location}'.`,
      );
    }
    return disk;
  }

  /** The VM's base disk: its manifest in the VM's region and the materialised file. */
  private async baseOf(r: VirtualMachineTable): Promise<{ disk: DiskManifest; path: string }> {
    const disk = await this.osDiskOf(r);
    return { disk, path: await this.bases.materialize(this.imageStores.get(r.location) as ChunkStore, disk) };
  }

  // ---- operation handlers ----

  async load(db: Db, vmKey: string): Promise<VirtualMachineTable> {
    const r = await db.selectFrom('virtual_machines').selectAll().where('id', '=', vmKey).executeTakeFirst();
    if (!r) throw new LabforgeError(404, 'ResourceNotFound', 'The virtual machine this operation works on was deleted.');
    return r;
  }

  private seedPath(vmKey: string): string {
    return join(this.diskDir(vmKey), 'seed.iso');
  }

  /**
   * Builds a VM's disk (base, overlay) and registers it with the driver. The identity disk of a Generalized
   * image is attached when it exists; `ensureSeed` makes it from the stored hash when it does not.
   */
  async provisionDisk(vmKey: string, progress: (percent: number, message: string) => Promise<void> = async () => {}): Promise<void> {
    const r = await this.load(this.db, vmKey);
    await progress(10, 'Preparing the base disk');
    // Until the row names its base, a VM deleted meanwhile must not make the base look unused (collectBases).
    const pinned = this.bases.pathFor(await this.osDiskOf(r));
    this.bases.pin(pinned);
    try {
      const base = await this.baseOf(r);
      await mkdir(this.diskDir(r.id), { recursive: true });
      const overlay = this.overlayPath(r.id);
      // A crash may have left a half-written overlay; a new one costs milliseconds.
      await rm(overlay, { force: true });
      await this.bases.createOverlay(base.path, overlay);
      await this.db.updateTable('virtual_machines').set({ base_file: base.path }).where('id', '=', r.id).execute();
    } finally {
      this.bases.unpin(pinned);
    }
    await this.define(r);
    await progress(60, 'Disk ready');
  }

  /** Registers (or updates) the VM with the driver, with its identity disk when there is one. */
  private async define(r: VirtualMachineTable): Promise<void> {
    const seed = existsSync(this.seedPath(r.id)) ? this.seedPath(r.id) : undefined;
    await this.driver.create({
      id: r.id,
      vcpus: r.vcpus,
      memoryMiB: r.memory_mib,
      hyperVGeneration: r.hyper_v_generation as 'V1' | 'V2',
      disks: [{ path: this.overlayPath(r.id), format: 'qcow2' }],
      ...(seed ? { seed: { path: seed, format: 'raw' as const } } : {}),
      forward: { guestPort: r.guest_port, hostPort: 0 },
    });
  }

  /** A Generalized VM without its identity disk gets one from what is stored (the password only as a hash). */
  async ensureSeed(vmKey: string, fresh = false): Promise<void> {
    const r = await this.load(this.db, vmKey);
    if (r.os_state !== 'Generalized' || (!fresh && existsSync(this.seedPath(r.id)))) return;
    if (!r.admin_username || (!r.admin_password_hash && r.ssh_public_keys === '[]')) {
      throw new LabforgeError(409, 'SeedMissing', 'This VM has no admin credentials to give the guest; delete it and create it again with credentials.');
    }
    await mkdir(this.diskDir(r.id), { recursive: true });
    const tmp = `${this.seedPath(r.id)}.tmp`;
    await buildSeed(
      {
        // A new instance id makes cloud-init apply the user data again (a password reset).
        instanceId: fresh ? `${r.id}-${Date.now().toString(36)}` : r.id,
        hostname: r.computer_name,
        osType: r.os_type as 'Linux' | 'Windows',
        adminUser: {
          name: r.admin_username,
          ...(r.admin_password_hash ? { passwordHash: r.admin_password_hash } : {}),
          sshPublicKeys: JSON.parse(r.ssh_public_keys) as string[],
        },
        ...(r.custom_data ? { cloudConfig: parseCustomData(r.custom_data, r.os_state) } : {}),
      },
      tmp,
    );
    await rename(tmp, this.seedPath(r.id));
    await this.define(r);
  }

  private async applyPower(vmKey: string, action: PowerAction): Promise<VmStatus> {
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
      const r = await this.load(this.db, vmKey);
      const base = await this.baseOf(r);
      await rm(this.overlayPath(vmKey), { force: true });
      await this.bases.createOverlay(base.path, this.overlayPath(vmKey));
      return (await this.driver.status(vmKey)) as VmStatus;
    }
    return this.driver.stop(vmKey, { timeoutMs: this.settings.stopTimeoutMs });
  }

  private async settle(
    db: Db,
    vmKey: string,
    status: VmStatus | undefined,
    failure: { code: string; message: string } | null,
    extra: Partial<VirtualMachineTable> = {},
  ) {
    const r = await db.selectFrom('virtual_machines').select(['running_since', 'usage_seconds']).where('id', '=', vmKey).executeTakeFirst();
    const live = status ?? missingOnHost(vmKey);
    const state = live.state;
    // The driver's reason wins (it knows why QEMU failed); otherwise the operation's error, if any.
    const reason = statusReason(live) ?? failure ?? undefined;
    await db
      .updateTable('virtual_machines')
      .set({
        state,
        host_port: live.hostPort ?? null,
        status_code: reason?.code ?? null,
        status_message: reason?.message ?? null,
        ...(r ? usageUpdate(r, state) : {}),
        ...extra,
      })
      .where('id', '=', vmKey)
      .execute();
  }

  handlers(): OperationHandler<{ vmKey: string; action?: PowerAction }>[] {
    return [
      {
        kind: VM_CREATE,
        run: async (ctx) => {
          await ctx.step('disk', () => this.provisionDisk(ctx.input.vmKey, (pct, msg) => ctx.progress(pct, msg)));
          await ctx.step('start', async () => {
            await this.driver.start(ctx.input.vmKey);
          });
          const status = await this.driver.status(ctx.input.vmKey);
          await ctx.complete('Succeeded', async (tx) => {
            await this.settle(tx, ctx.input.vmKey, status, null, { provisioning_state: 'Succeeded' });
          });
        },
        onCancel: async (ctx, tx) => {
          await tx.deleteFrom('virtual_machines').where('id', '=', ctx.input.vmKey).execute();
          await this.removeFiles(ctx.input.vmKey).catch(() => undefined);
        },
        onFailure: async (ctx, tx, error) => {
          // Undo: nothing of a VM that never came up keeps running or takes disk space.
          await this.driver.delete(ctx.input.vmKey).catch(() => undefined);
          await rm(this.diskDir(ctx.input.vmKey), { recursive: true, force: true });
          await tx
            .updateTable('virtual_machines')
            .set({ provisioning_state: 'Failed', state: 'Failed', status_code: error.code, status_message: error.message, base_file: null })
            .where('id', '=', ctx.input.vmKey)
            .execute();
        },
      },
      {
        kind: VM_POWER,
        run: async (ctx) => {
          const action = ctx.input.action ?? 'start';
          await ctx.progress(10, DOING[action]);
          const status = await this.applyPower(ctx.input.vmKey, action);
          await ctx.complete('Succeeded', async (tx) => {
            await this.settle(tx, ctx.input.vmKey, status, null);
          });
        },
        onFailure: async (ctx, tx, error) => {
          await this.settle(tx, ctx.input.vmKey, await this.driver.status(ctx.input.vmKey).catch(() => undefined), error);
        },
      },
    ];
  }
}

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

const RESERVED_CLOUD_CONFIG = ['users', 'hostname', 'fqdn', 'password', 'chpasswd'];

/** customData is a #cloud-config document merged into the VM's first-boot user-data (beside the admin user labforge adds). */
export function parseCustomData(text: string | undefined, osState: string): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  const field = 'properties.osProfile.customData';
  if (osState !== 'Generalized') {
    throw invalidParameter(
      'customData runs at first boot of a Generalized image; a Specialized image boots as an exact copy and ignores it. Remove it.',
      field,
    );
  }
  if (!text.startsWith('#cloud-config')) {
    throw invalidParameter(
      'customData must be a cloud-init "#cloud-config" document (its first line is #cloud-config), base64-encoded as Azure expects.',
      field,
    );
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw invalidParameter(`customData is not valid YAML: ${(err as Error).message}`, field);
  }
  if (doc === null || doc === undefined) return undefined;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw invalidParameter('customData must be a YAML mapping of cloud-config keys.', field);
  const reserved = Object.keys(doc).filter((k) => RESERVED_CLOUD_CONFIG.includes(k));
  if (reserved.length) {
    throw invalidParameter(
      `customData must not set ${reserved.join(', ')}: the admin user and host name come from osProfile (adminUsername, adminPassword, computerName).`,
      field,
    );
  }
  return doc as Record<string, unknown>;
}
