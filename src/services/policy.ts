// Who may see and do what: the rules every service asks, written once.
import type { Principal } from '../lib/principal.js';

/** Lab staff: admins and creators (educators). */
export const isStaff = (p: Principal) => p.role === 'admin' || p.role === 'creator';

/** Students see only their own VMs; to them another's VM does not exist. Staff see every VM. */
export const canSeeVm = (p: Principal, vm: { owner: string }) => isStaff(p) || vm.owner === p.subject;
