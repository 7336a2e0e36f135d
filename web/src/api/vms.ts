// Lab VMs: a student's own (with the lab each belongs to), a lab's template and
// student VMs, their power actions, and console tickets.
import { listLabs } from './labs.js';
import { get, runOperation, send } from './transport.js';
import { API_VERSIONS, type ConsoleUrls, type Lab, type LabVm, type List } from './types.js';

const V = API_VERSIONS.labServices;

/** A lab VM with the lab it belongs to. */
export interface MyVm extends LabVm {
  lab: Lab;
}

export const labVms = async (labId: string) => (await get<List<LabVm>>(`${labId}/virtualMachines`, V)).value;

/** The student VMs of every lab this person sees (the server lists a student only their own). */
export async function myVms(sub: string): Promise<MyVm[]> {
  const out: MyVm[] = [];
  for (const lab of await listLabs(sub)) {
    for (const vm of await labVms(lab.id)) if (vm.properties.vmType === 'User') out.push({ ...vm, lab });
  }
  return out;
}

export type VmAction = 'start' | 'stop' | 'reimage';

/** Starts, stops or resets (reimage) a lab VM and resolves with the operation once it ended. */
export const vmAction = (vmId: string, action: VmAction) => runOperation('POST', `${vmId}/${action}`, V);

/** One-minute WebSocket URLs of a VM's console (a lab VM's id). */
export const consoleUrls = (vmId: string) => send<ConsoleUrls>('POST', `${vmId}/console`, V);
