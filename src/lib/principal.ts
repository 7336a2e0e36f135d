// Who is calling: every layer that records who did something speaks of a principal.
// The roles are the wire's (src/contract/roles.ts), written once there.
import type { Role } from '../contract/roles.js';

export { ROLES, type Role } from '../contract/roles.js';

/** Who is calling: the token's subject and role. */
export interface Principal {
  tokenId: string;
  subject: string;
  role: Role;
}

/** The built-in principal used for work the server does by itself. */
export const SYSTEM: Principal = { tokenId: 'system', subject: 'labforge', role: 'admin' };
