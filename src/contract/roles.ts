// The roles of the wire (tokens, accounts, whoami) and of every permission
// check. They live in src/lib/principal.ts (every layer of the server speaks
// of principals); the contract gives them to clients. Neither module imports
// anything, so the portal may take them as they are.
export { ROLES, type Role } from '../lib/principal.js';
