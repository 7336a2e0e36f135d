// Who may see and do what: the rules every service asks, written once.
//
// | who                          | Compute VMs                 | a lab's VMs (any API)                          |
// |------------------------------|-----------------------------|------------------------------------------------|
// | admin                        | everything                  | everything                                     |
// | creator (educator)           | everything                  | see all; act only on labs they created         |
// | user (student)               | see and power their own     | see and power their own seat, within the quota |
//
// "Power" is start, stop, restart, reimage, redeploy; a lab VM's console and
// password follow the same rule (checkAct); a student's start, restart or
// redeploy of a lab VM (each leaves it running) must fit in their hours.
//
// A lab's VMs are the lab's: through the Compute API they can be read and
// powered under the lab's rules, never changed or deleted (that is the lab's
// publish and scale). docs/SECURITY.md has the whole table.
import { conflict, forbidden } from '../errors.js';
import type { Principal } from '../lib/principal.js';
import type { LabRecord, LabRepository } from '../repositories/lab.repository.js';
import type { VmRecord } from '../repositories/vm.repository.js';

/** Power actions after which the VM runs: a restart or redeploy of a stopped VM boots it as a start does. */
const BOOTS = new Set(['start', 'restart', 'redeploy']);

/** Lab staff: admins and creators (educators). */
export const isStaff = (p: Principal) => p.role === 'admin' || p.role === 'creator';

/** Students see only their own VMs; to them another's VM does not exist. Staff see every VM. */
export const canSeeVm = (p: Principal, vm: { owner: string }) => isStaff(p) || vm.owner === p.subject;

/** ISO 8601 duration (or hh:mm) to seconds; undefined when it is not one. */
export function parseDuration(v: string): number | undefined {
  const hm = /^(\d{1,4}):(\d{2})$/.exec(v);
  if (hm) return Number(hm[1]) * 3600 + Number(hm[2]) * 60;
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(v);
  if (!m || v === 'P' || v.endsWith('T')) return undefined;
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Math.floor(Number(m[4] ?? 0));
}

/** Seconds a VM has run, counting the current run. */
export const usedSeconds = (v: Pick<VmRecord, 'usageSeconds' | 'runningSince'>) =>
  v.usageSeconds + (v.runningSince ? Math.max(0, Math.round((Date.now() - Date.parse(v.runningSince)) / 1000)) : 0);

/** The rules that need to look at a VM's lab: ownership of labs carried to their VMs, and students' hours. */
export class AccessPolicy {
  constructor(private readonly labs: LabRepository) {}

  /** A creator changes only their own labs; admins change any. */
  checkLabOwner(p: Principal, lab: LabRecord): void {
    if (p.role === 'admin' || lab.createdBy === p.subject) return;
    throw forbidden(
      `Lab '${lab.name}' belongs to '${lab.createdBy}'; '${p.subject}' (role ${p.role}) may look at it but not change it. Ask its creator or an admin. Nothing was changed.`,
    );
  }

  /**
   * May `p` act on `vm` (power it, open its console, set its password)? The VM is one the caller can see. A lab's
   * VM follows its lab: staff other than its creator (or an admin) may not, a student only their own seat (never
   * the template). Returns the VM's lab, if it has one.
   */
  async checkAct(p: Principal, vm: Pick<VmRecord, 'labKey' | 'vmType' | 'owner'>): Promise<LabRecord | undefined> {
    if (!vm.labKey) return undefined;
    const lab = await this.labs.byKey(vm.labKey);
    if (!lab) return undefined;
    const mine = vm.vmType === 'User' && vm.owner === p.subject.toLowerCase() && vm.owner !== lab.createdBy;
    if (!mine) {
      if (!isStaff(p)) throw forbidden('Only lab staff can do this to a VM that is not yours.');
      this.checkLabOwner(p, lab);
    }
    return lab;
  }

  /**
   * May `p` start, stop or otherwise power `vm`? As `checkAct`, and a student's action that leaves their lab VM
   * running (start, restart, redeploy: each boots it) must fit in their hours.
   */
  async checkPower(p: Principal, vm: VmRecord, action: string): Promise<void> {
    const lab = await this.checkAct(p, vm);
    if (lab && BOOTS.has(action) && !isStaff(p)) await this.checkQuota(lab, vm);
  }

  /** A student's start beyond their lab's hours (plus any extra an educator gave them) is refused. */
  async checkQuota(lab: LabRecord, vm: VmRecord): Promise<void> {
    const user = await this.labs.userByEmail(lab.key, vm.owner);
    const quota = (parseDuration(lab.vmProfile.usageQuota) ?? 0) + (user?.additionalUsageQuotaSeconds ?? 0);
    const used = usedSeconds(vm);
    if (used >= quota) {
      throw conflict(
        `Your ${Math.round(quota / 3600)} hours on this lab's VM are used up (${Math.round(used / 60)} minutes so far). Ask your teacher for more hours.`,
        undefined,
        'QuotaExceeded',
      );
    }
  }

  /** A lab's VM is changed or deleted only through its lab (publish, scale), never as a Compute VM. */
  checkNotLabVm(vm: VmRecord, what: string): void {
    if (!vm.labKey) return;
    const lab = vm.name.split('/')[1];
    throw conflict(
      `Virtual machine '${vm.name}' belongs to lab '${lab}': it cannot ${what} through the Compute API. Change the lab instead (its number of VMs, or publish it again).`,
      undefined,
      'OperationNotAllowed',
    );
  }
}
