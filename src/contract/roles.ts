// The roles of the wire (tokens, accounts, whoami) and of every permission
// check. Plain constants with no imports: the portal may take them as they are.

/** Every role, from the most to the least powerful. */
export const ROLES = ['admin', 'creator', 'user'] as const;

/** admin: everything; creator: galleries read, VMs and labs of their own; user: their own VMs only. */
export type Role = (typeof ROLES)[number];
