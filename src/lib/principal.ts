// Who is calling: every layer that records who did something speaks of a principal.

export type Role = 'admin' | 'creator' | 'user';
export const ROLES: readonly Role[] = ['admin', 'creator', 'user'];

/** Who is calling: the token's subject and role. */
export interface Principal {
  tokenId: string;
  subject: string;
  role: Role;
}

/** The built-in principal used for work the server does by itself. */
export const SYSTEM: Principal = { tokenId: 'system', subject: 'labforge', role: 'admin' };
