// Hypervisor hosts: state, acceleration and why, their VMs; admins have KVM checked again.
import { get, send } from './transport.js';
import { API_VERSIONS, type Host, type List } from './types.js';

const V = API_VERSIONS.labforge;

export const listHosts = async () => (await get<List<Host>>('/providers/Labforge.Core/hosts', V)).value;
export const checkHost = (name: string) => send<Host>('POST', `/providers/Labforge.Core/hosts/${encodeURIComponent(name)}/checkAcceleration`, V);
