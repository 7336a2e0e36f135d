// What the Lab Services route files share: the path prefix, roles and path parameters.
import Type from 'typebox';
import { ROLES } from '../../contract/roles.js';

const family = 'labServices' as const;
/** Anyone signed in (students see only what is theirs: the services decide). */
export const READ = { apiFamily: family, roles: ROLES } as const;
export const STAFF_ONLY = { apiFamily: family, roles: ['admin', 'creator'] } as const;
export const ADMIN = { apiFamily: family, roles: ['admin'] } as const;

export const RG = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.LabServices';
export const SubParams = Type.Object({ sub: Type.String() });
export const GroupParams = Type.Object({ sub: Type.String(), rg: Type.String() });
export const PlanParams = Type.Object({ sub: Type.String(), rg: Type.String(), plan: Type.String() });
export const LabParams = Type.Object({ sub: Type.String(), rg: Type.String(), lab: Type.String() });
