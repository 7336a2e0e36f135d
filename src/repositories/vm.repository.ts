// The `virtual_machines` table: Compute VMs and the VMs of labs (rows named
// `labs/<lab>/<vm>`). Every query on the table is here, and the mapping of a
// row to the domain's `VmRecord` (JSON columns parsed, flags as booleans).
// The VM service is the only writer; other services read through here.
import type { Kysely, Selectable } from 'kysely';
import type { VmState } from '../compute/compute-driver.js';
import type { Database, Db, VirtualMachineTable } from '../db/schema.js';
import { labVmArmId, vmArmId } from '../lib/arm-id.js';
import type { Principal } from '../lib/principal.js';
import { nowIso } from '../lib/time.js';
import { creationStamp, forUpdate, keyOf, modificationStamp, type ResourceMeta, resourceMeta } from './common.js';
import type { AutoShutdownProfile } from './profiles.js';

/** A VM as the domain sees it: what was asked for it, its power state and its bookkeeping. */
export interface VmRecord extends ResourceMeta {
  /** The image reference as the caller gave it (a version, or an image definition for its latest). */
  imageReference: string;
  /** The manifest the VM's disk is built on: an image version's key or a lab snapshot's name. */
  versionKey: string;
  /** The ARM id of the version the VM was made from. */
  exactVersion: string;
  osType: 'Linux' | 'Windows';
  osState: 'Generalized' | 'Specialized';
  hyperVGeneration: 'V1' | 'V2';
  size: string;
  vcpus: number;
  memoryMiB: number;
  computerName: string;
  adminUsername: string | null;
  adminPasswordHash: string | null;
  sshPublicKeys: string[];
  /** cloud-init user-data applied at first boot of a Generalized image. */
  customData: string | null;
  state: VmState;
  /** Why the VM is Failed, or what its user should know while it runs (SoftwareEmulationFallback); null otherwise. */
  statusCode: string | null;
  statusMessage: string | null;
  /** Host port forwarded to the guest's SSH (Linux) or RDP (Windows) port, as last seen. */
  hostPort: number | null;
  guestPort: number;
  /** The guest was deprovisioned and the VM marked generalized: it can only be captured or deleted. */
  generalized: boolean;
  /** Who the VM is for (a token subject); they see and use it. */
  owner: string;
  /** The materialised base file the VM's overlay sits on, once its disk is made. */
  baseFile: string | null;
  /** Set for the template and student VMs of a lab. */
  labKey: string | null;
  vmType: 'Template' | 'User' | null;
  /** Seconds this VM ran before its current run (for lab usage quotas). */
  usageSeconds: number;
  runningSince: string | null;
}

/** What a new VM starts with; stamps, state bookkeeping and keys of names are added here. */
export type NewVm = Omit<VmRecord, keyof ResourceMeta | 'usageSeconds' | 'runningSince' | 'generalized' | 'baseFile' | 'statusCode' | 'hostPort'> & {
  key: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  provisioningState: string;
};

/** A change to a VM's state or bookkeeping (only the fields given change). */
export interface VmChange {
  provisioningState?: string;
  state?: VmState;
  statusCode?: string | null;
  statusMessage?: string | null;
  hostPort?: number | null;
  usageSeconds?: number;
  runningSince?: string | null;
  baseFile?: string | null;
  owner?: string;
  tags?: Record<string, string>;
  generalized?: boolean;
  adminPasswordHash?: string | null;
}

export function toVmRecord(r: Selectable<VirtualMachineTable>): VmRecord {
  return Object.assign(resourceMeta(r), {
    imageReference: r.image_reference,
    versionKey: r.version_id,
    exactVersion: r.exact_version,
    osType: r.os_type as VmRecord['osType'],
    osState: r.os_state as VmRecord['osState'],
    hyperVGeneration: r.hyper_v_generation as VmRecord['hyperVGeneration'],
    size: r.size,
    vcpus: r.vcpus,
    memoryMiB: r.memory_mib,
    computerName: r.computer_name,
    adminUsername: r.admin_username,
    adminPasswordHash: r.admin_password_hash,
    sshPublicKeys: JSON.parse(r.ssh_public_keys) as string[],
    customData: r.custom_data,
    state: r.state as VmState,
    statusCode: r.status_code,
    statusMessage: r.status_message,
    hostPort: r.host_port,
    guestPort: r.guest_port,
    generalized: r.generalized === 1,
    owner: r.owner,
    baseFile: r.base_file,
    labKey: r.lab_id,
    vmType: r.vm_type as VmRecord['vmType'],
    usageSeconds: r.usage_seconds,
    runningSince: r.running_since,
  });
}

function toColumns(c: VmChange): Partial<VirtualMachineTable> {
  const out: Partial<VirtualMachineTable> = {};
  if (c.provisioningState !== undefined) out.provisioning_state = c.provisioningState;
  if (c.state !== undefined) out.state = c.state;
  if (c.statusCode !== undefined) out.status_code = c.statusCode;
  if (c.statusMessage !== undefined) out.status_message = c.statusMessage;
  if (c.hostPort !== undefined) out.host_port = c.hostPort;
  if (c.usageSeconds !== undefined) out.usage_seconds = c.usageSeconds;
  if (c.runningSince !== undefined) out.running_since = c.runningSince;
  if (c.baseFile !== undefined) out.base_file = c.baseFile;
  if (c.owner !== undefined) out.owner = c.owner;
  if (c.tags !== undefined) out.tags = JSON.stringify(c.tags);
  if (c.generalized !== undefined) out.generalized = c.generalized ? 1 : 0;
  if (c.adminPasswordHash !== undefined) out.admin_password_hash = c.adminPasswordHash;
  return out;
}

/** The ARM id of a VM: a Compute VM, or a lab's VM (named `labs/<lab>/<vm>`). */
export function vmRecordArmId(v: Pick<VmRecord, 'subscriptionId' | 'resourceGroup' | 'name' | 'labKey'>): string {
  if (v.labKey) {
    const [, labName, name] = v.name.split('/') as [string, string, string];
    return labVmArmId({ subscriptionId: v.subscriptionId, resourceGroup: v.resourceGroup, labName, name });
  }
  return vmArmId(v);
}

/** Running-time bookkeeping that goes with a state change: a run starts, or its time is added up. */
export function usageChange(v: Pick<VmRecord, 'runningSince' | 'usageSeconds'>, state: VmState): VmChange {
  if (state === 'Running') return v.runningSince ? {} : { runningSince: nowIso() };
  if (!v.runningSince) return {};
  const ran = Math.max(0, Math.round((Date.now() - Date.parse(v.runningSince)) / 1000));
  return { runningSince: null, usageSeconds: v.usageSeconds + ran };
}

export class VmRepository {
  constructor(readonly db: Kysely<Database>) {}

  /** A VM by its resource group and name (a lab VM's name is `labs/<lab>/<vm>`); `lock` holds the row to the transaction's end. */
  async byName(db: Db, sub: string, rg: string, name: string, lock = false): Promise<VmRecord | undefined> {
    const q = db
      .selectFrom('virtual_machines')
      .selectAll()
      .where('subscription_id', '=', sub)
      .where('resource_group_key', '=', keyOf(rg))
      .where('name_key', '=', keyOf(name));
    const r = await (lock ? forUpdate(db, q) : q).executeTakeFirst();
    return r ? toVmRecord(r) : undefined;
  }

  async byKey(key: string, db: Db = this.db, lock = false): Promise<VmRecord | undefined> {
    const q = db.selectFrom('virtual_machines').selectAll().where('id', '=', key);
    const r = await (lock ? forUpdate(db, q) : q).executeTakeFirst();
    return r ? toVmRecord(r) : undefined;
  }

  /** Compute VMs (not lab VMs) of a subscription, by key order, for paging. */
  async listCompute(q: { sub: string; rg?: string; owner?: string; after?: string; limit: number }): Promise<VmRecord[]> {
    let s = this.db.selectFrom('virtual_machines').selectAll().where('subscription_id', '=', q.sub).where('lab_id', 'is', null);
    if (q.rg !== undefined) s = s.where('resource_group_key', '=', keyOf(q.rg));
    if (q.owner !== undefined) s = s.where('owner', '=', q.owner);
    if (q.after) s = s.where('id', '>', q.after);
    return (await s.orderBy('id').limit(q.limit).execute()).map(toVmRecord);
  }

  /** The VMs of a lab; `owner` keeps one student's only, `type` one kind. */
  async listByLab(labKey: string, q: { owner?: string; type?: 'Template' | 'User' } = {}, db: Db = this.db): Promise<VmRecord[]> {
    let s = db.selectFrom('virtual_machines').selectAll().where('lab_id', '=', labKey);
    if (q.owner !== undefined) s = s.where('owner', '=', q.owner);
    if (q.type !== undefined) s = s.where('vm_type', '=', q.type);
    return (await s.execute()).map(toVmRecord);
  }

  async all(): Promise<VmRecord[]> {
    return (await this.db.selectFrom('virtual_machines').selectAll().execute()).map(toVmRecord);
  }

  /** The keys of every VM recorded. */
  async keys(): Promise<Set<string>> {
    return new Set((await this.db.selectFrom('virtual_machines').select('id').execute()).map((r) => r.id));
  }

  /** Base files VMs are built on (for collecting unused bases). */
  async baseFiles(): Promise<Set<string>> {
    const rows = await this.db.selectFrom('virtual_machines').select('base_file').execute();
    return new Set(rows.map((r) => r.base_file).filter((b): b is string => b !== null));
  }

  /** Names of VMs made from any of these versions (at most `limit`). */
  async usersOfVersions(versionKeys: string[], limit?: number, db: Db = this.db): Promise<{ versionKey: string; name: string; resourceGroup: string }[]> {
    if (!versionKeys.length) return [];
    let q = db.selectFrom('virtual_machines').select(['version_id', 'name', 'resource_group']).where('version_id', 'in', versionKeys);
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map((r) => ({ versionKey: r.version_id, name: r.name, resourceGroup: r.resource_group }));
  }

  /** The student VMs of every lab, with their lab's auto-shutdown profile (for the auto-shutdown watch). */
  async studentVmsWithShutdownProfile(): Promise<{ key: string; name: string; state: VmState; profile: AutoShutdownProfile }[]> {
    const rows = await this.db
      .selectFrom('virtual_machines')
      .innerJoin('labs', 'labs.id', 'virtual_machines.lab_id')
      .select(['virtual_machines.id as id', 'virtual_machines.name as name', 'virtual_machines.state as state', 'labs.auto_shutdown_profile as profile'])
      .where('virtual_machines.vm_type', '=', 'User')
      .execute();
    return rows.map((r) => ({ key: r.id, name: r.name, state: r.state as VmState, profile: JSON.parse(r.profile) as AutoShutdownProfile }));
  }

  /** How many VMs are in each state (created VMs only). */
  async countByState(): Promise<Map<string, number>> {
    const rows = await this.db.selectFrom('virtual_machines').select(['state']).where('provisioning_state', '=', 'Succeeded').execute();
    const out = new Map<string, number>();
    for (const r of rows) out.set(r.state, (out.get(r.state) ?? 0) + 1);
    return out;
  }

  async insert(db: Db, by: Principal, vms: NewVm[]): Promise<VmRecord[]> {
    if (!vms.length) return [];
    const stamp = creationStamp(by);
    const rows: VirtualMachineTable[] = vms.map((v) => ({
      id: v.key,
      subscription_id: v.subscriptionId,
      resource_group: v.resourceGroup,
      resource_group_key: keyOf(v.resourceGroup),
      name: v.name,
      name_key: keyOf(v.name),
      location: v.location,
      tags: JSON.stringify(v.tags),
      provisioning_state: v.provisioningState,
      image_reference: v.imageReference,
      version_id: v.versionKey,
      exact_version: v.exactVersion,
      os_type: v.osType,
      os_state: v.osState,
      hyper_v_generation: v.hyperVGeneration,
      size: v.size,
      vcpus: v.vcpus,
      memory_mib: v.memoryMiB,
      computer_name: v.computerName,
      admin_username: v.adminUsername,
      admin_password_hash: v.adminPasswordHash,
      ssh_public_keys: JSON.stringify(v.sshPublicKeys),
      custom_data: v.customData,
      state: v.state,
      status_code: null,
      status_message: v.statusMessage,
      host_port: null,
      guest_port: v.guestPort,
      generalized: 0,
      owner: v.owner,
      base_file: null,
      lab_id: v.labKey,
      vm_type: v.vmType,
      usage_seconds: 0,
      running_since: null,
      ...stamp,
    }));
    await db.insertInto('virtual_machines').values(rows).execute();
    return rows.map(toVmRecord);
  }

  async update(db: Db, key: string, change: VmChange): Promise<void> {
    const set = toColumns(change);
    if (Object.keys(set).length) await db.updateTable('virtual_machines').set(set).where('id', '=', key).execute();
  }

  /** Changes a VM only while it is still in `state` (a reconciliation must not overwrite a transition that began meanwhile). */
  async updateIfState(key: string, state: VmState, change: VmChange): Promise<void> {
    await this.db.updateTable('virtual_machines').set(toColumns(change)).where('id', '=', key).where('state', '=', state).execute();
  }

  /** A change by a person: tags, owner or flags, with a new ETag. */
  async modify(db: Db, key: string, by: Principal, change: VmChange): Promise<VmRecord> {
    await db
      .updateTable('virtual_machines')
      .set({ ...toColumns(change), ...modificationStamp(by) })
      .where('id', '=', key)
      .execute();
    return (await this.byKey(key, db)) as VmRecord;
  }

  async delete(db: Db, keys: string[]): Promise<void> {
    if (keys.length) await db.deleteFrom('virtual_machines').where('id', 'in', keys).execute();
  }

  async deleteByLab(db: Db, labKey: string): Promise<void> {
    await db.deleteFrom('virtual_machines').where('lab_id', '=', labKey).execute();
  }
}
