// Microsoft.LabServices/labs/users: a lab's students.
import Type, { type Static } from 'typebox';
import { SystemData } from '../arm.js';

export const LabUser = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  systemData: SystemData,
  properties: Type.Object({
    email: Type.String(),
    displayName: Type.Optional(Type.String()),
    registrationState: Type.String(),
    invitationState: Type.String(),
    invitationSent: Type.Optional(Type.String()),
    totalUsage: Type.String({ description: 'ISO 8601 duration' }),
    additionalUsageQuota: Type.String({ description: 'ISO 8601 duration' }),
    provisioningState: Type.String(),
  }),
});
export type LabUser = Static<typeof LabUser>;

/** The answer to invite: the user and the registration code to send them (labforge sends no email). */
export const InvitedLabUser = Type.Object({ ...LabUser.properties, registrationCode: Type.String() });
export type InvitedLabUser = Static<typeof InvitedLabUser>;

/** PUT and PATCH of a lab user. */
export const LabUserInput = Type.Object({
  properties: Type.Object({ email: Type.Optional(Type.String()), additionalUsageQuota: Type.Optional(Type.String({ description: 'ISO 8601 duration' })) }),
});
export type LabUserInput = Static<typeof LabUserInput>;

/** POST …/users/{user}/invite (the text is not used: no email is sent). */
export const InviteInput = Type.Object({ text: Type.Optional(Type.String()) });
export type InviteInput = Static<typeof InviteInput>;
