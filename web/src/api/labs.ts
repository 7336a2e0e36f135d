// Labs: listing, reading, creating (the wizard), publishing, the number of
// student VMs, class schedules, and the lab's students.
import { follow, get, operationOf, runOperation, send, start } from './transport.js';
import { API_VERSIONS, type Lab, type LabUserRow, type List, type Operation, type ResourceGroup } from './types.js';

const V = API_VERSIONS.labServices;

/** A lab's id from its subscription, resource group and name. */
export const labIdOf = (sub: string, group: string | undefined, name: string | undefined) =>
  `/subscriptions/${sub}/resourceGroups/${group}/providers/Microsoft.LabServices/labs/${name}`;

export const listLabs = async (sub: string) => (await get<List<Lab>>(`/subscriptions/${sub}/providers/Microsoft.LabServices/labs`, V)).value;
export const getLab = (id: string) => get<Lab>(id, V);

/** The resource groups a new lab can go in. */
export const listResourceGroups = async (sub: string) => (await get<List<ResourceGroup>>(`/subscriptions/${sub}/resourcegroups`, API_VERSIONS.resources)).value;

/** Creates a lab and follows its operation (the template VM is built and started). */
export async function createLab(labId: string, body: unknown, onProgress: (percent: number) => void): Promise<Operation> {
  return follow(operationOf(await start<Lab>('PUT', labId, V, body)), onProgress);
}

/** Publishes a lab (student VMs made from the template or the image) and resolves when that ended. */
export const publishLab = (labId: string) => runOperation('POST', `${labId}/publish`, V);

/** Changes the number of student VMs; a published lab is rescaled by an operation (followed here). */
export async function setCapacity(labId: string, capacity: number): Promise<void> {
  const r = await start<Lab>('PATCH', labId, V, { properties: { virtualMachineProfile: { sku: { capacity } } } });
  if (r.operationUrl) await follow(r.operationUrl);
}

/** Creates or replaces a schedule of a lab (the wizard's weekly class schedule). */
export const putSchedule = (labId: string, name: string, properties: unknown) => send('PUT', `${labId}/schedules/${name}`, V, { properties });

export const labUsers = async (labId: string) => (await get<List<LabUserRow>>(`${labId}/users`, V)).value;
export const addLabUser = (labId: string, name: string, email: string) =>
  send<LabUserRow>('PUT', `${labId}/users/${encodeURIComponent(name)}`, V, { properties: { email } });
export const inviteLabUser = (userId: string) => send<LabUserRow>('POST', `${userId}/invite`, V, {});
