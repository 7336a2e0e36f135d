// A lab's VMs as people use them: staff see every VM of a lab, a student only
// the one they were given; a student starts, stops and resets their own VM
// within their hours; anyone may set the admin password of a VM they may use.
// The VM runtime (power, state, seeds) is the VM service's.
import { hashPassword } from '../compute/qemu/seed.js';
import { conflict, forbidden, invalidParameter, notFound } from '../errors.js';
import type { Principal } from '../lib/principal.js';
import type { Operation } from '../operations/operation.store.js';
import type { LabRecord, LabRepository } from '../repositories/lab.repository.js';
import type { VmRecord } from '../repositories/vm.repository.js';
import { durationSeconds, type LabService } from './lab.service.js';
import { isStaff } from './policy.js';
import { publicVm, type VirtualMachine, type VmService } from './vm.service.js';

export interface LabVm extends VirtualMachine {
  labKey: string;
  labName: string;
  vmName: string;
  vmType: 'Template' | 'User';
  claimedBy: string | null;
}

function toLabVm(v: VmRecord, lab: LabRecord): LabVm {
  return Object.assign(publicVm(v), {
    labKey: lab.key,
    labName: lab.name,
    vmName: v.name.split('/')[2] as string,
    vmType: (v.vmType ?? 'User') as 'Template' | 'User',
    claimedBy: v.vmType === 'User' && v.owner !== lab.createdBy ? v.owner : null,
  });
}

export class LabVmService {
  constructor(
    private readonly labs: LabService,
    private readonly labRecords: LabRepository,
    private readonly vms: VmService,
  ) {}

  /** Staff see every VM of a lab; a student only the one they claimed. */
  async list(p: Principal, sub: string, rg: string, labName: string): Promise<LabVm[]> {
    const lab = await this.labs.requireLab(p, sub, rg, labName);
    const records = await this.vms.labVms(lab.key, isStaff(p) ? {} : { owner: p.subject.toLowerCase(), type: 'User' });
    const out: LabVm[] = [];
    for (const v of records) out.push(toLabVm(await this.vms.reconcileRecord(v), lab));
    return out.sort((a, b) => (a.vmType === b.vmType ? Number(a.vmName) - Number(b.vmName) : a.vmType === 'Template' ? -1 : 1));
  }

  async get(p: Principal, sub: string, rg: string, labName: string, vmName: string): Promise<LabVm> {
    const vm = (await this.list(p, sub, rg, labName)).find((v) => v.vmName.toLowerCase() === vmName.toLowerCase());
    if (!vm) {
      throw notFound(
        'ResourceNotFound',
        `The Resource 'Microsoft.LabServices/labs/${labName}/virtualMachines/${vmName}' under resource group '${rg}' was not found.`,
      );
    }
    return vm;
  }

  async action(p: Principal, sub: string, rg: string, labName: string, vmName: string, action: 'start' | 'stop' | 'reimage' | 'redeploy'): Promise<Operation> {
    const vm = await this.get(p, sub, rg, labName, vmName);
    const lab = await this.labs.requireLab(p, sub, rg, labName);
    if (vm.vmType === 'Template' || !(vm.claimedBy && vm.claimedBy === p.subject.toLowerCase())) {
      if (!isStaff(p)) throw forbidden('Only lab staff can do this to a VM that is not yours.');
      this.labs.checkOwner(p, lab);
    }
    if (action === 'start' && !isStaff(p)) await this.checkQuota(lab, vm);
    return this.vms.powerByKey(p, vm.key, action);
  }

  private async checkQuota(lab: LabRecord, vm: LabVm): Promise<void> {
    const user = await this.labRecords.userByEmail(lab.key, vm.owner);
    const quota = durationSeconds(lab.vmProfile.usageQuota, 'usageQuota') + (user?.additionalUsageQuotaSeconds ?? 0);
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
    const vm = await this.get(p, sub, rg, labName, vmName);
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
}
