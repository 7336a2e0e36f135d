// A lab's VMs as people use them: staff see every VM of a lab, a student only
// the one they were given; a student starts, stops and resets their own VM
// within their hours; whoever may power a VM may open its console and set its
// admin password (the access policy says who).
// The VM runtime (power, state, seeds) is the VM service's.
import { hashPassword } from '../compute/qemu/seed.js';
import { conflict, invalidParameter, notFound } from '../errors.js';
import type { Principal } from '../lib/principal.js';
import type { Operation } from '../operations/operation.store.js';
import type { LabRecord } from '../repositories/lab.repository.js';
import type { VmRecord } from '../repositories/vm.repository.js';
import type { LabService } from './lab.service.js';
import { type AccessPolicy, isStaff } from './policy.js';
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
    private readonly vms: VmService,
    private readonly policy: AccessPolicy,
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
    // The same rules as the Compute API applies to this VM: the lab's creator or an admin, or the student's own seat within its hours.
    await this.policy.checkPower(p, await this.vms.load(vm.key), action);
    return this.vms.powerByKey(p, vm.key, action);
  }

  /** Sets a new password for the admin or non-admin user of a lab VM from a Generalized image; it applies at the next start. */
  async resetPassword(p: Principal, sub: string, rg: string, labName: string, vmName: string, body: { username?: string; password?: string }): Promise<void> {
    const vm = await this.get(p, sub, rg, labName, vmName);
    // As for powering it: the lab's creator (or an admin), or the student whose seat it is.
    await this.policy.checkAct(p, vm);
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
