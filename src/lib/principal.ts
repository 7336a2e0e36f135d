// Who is calling: every layer that records who did something speaks of a principal.
// The roles are also the wire's: src/contract/roles.ts gives them to clients.

/** Every role, from the most to the least powerful. */
export const ROLES = ['admin', 'creator', 'user'] as const;

/** admin: everything; creator: galleries read, VMs and labs of their own; user: their own VMs only. */
export type Role = (typeof ROLES)[number];

/** Who is calling: the token's subject and role. */
export interface Principal {
  tokenId: string;
  subject: string;
  role: Role;
}

/** The built-in principal used for work the server does by itself. */
export const SYSTEM: Principal = { tokenId: 'system', subject: 'labforge', role: 'admin' };
