// Microsoft.LabServices/labs/virtualMachines: a lab's template and student VMs.
import Type, { type Static } from 'typebox';
import { ErrorBody, SystemData } from '../arm.js';
import { VM_POWER_STATES } from '../compute/virtual-machines.js';
import { Nullable, StringEnum } from '../schema.js';

/** labforge: the progress of exporting the template to the gallery (on the template only). */
export const ExportStatus = Type.Object({
  operationId: Type.String(),
  status: Type.String(),
  percentComplete: Type.Number(),
  message: Nullable(Type.String()),
  imageVersionId: Type.Optional(Type.String()),
  error: Type.Optional(ErrorBody),
});
export type ExportStatus = Static<typeof ExportStatus>;

export const LabVm = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  systemData: SystemData,
  properties: Type.Object({
    provisioningState: Type.String(),
    state: StringEnum(VM_POWER_STATES),
    connectionProfile: Type.Object({
      sshAuthority: Type.Optional(Type.String()),
      rdpAuthority: Type.Optional(Type.String()),
      adminUsername: Type.Optional(Type.String()),
    }),
    claimedByUserId: Type.Optional(Type.String()),
    vmType: StringEnum(['Template', 'User']),
    statusCode: Type.Optional(Type.String()),
    statusMessage: Type.Optional(Type.String()),
    exportStatus: Type.Optional(ExportStatus),
  }),
});
export type LabVm = Static<typeof LabVm>;

/** POST …/virtualMachines/{vm}/resetPassword: applies at the next start (Generalized images). */
export const ResetPasswordInput = Type.Object({ username: Type.Optional(Type.String()), password: Type.Optional(Type.String()) });
export type ResetPasswordInput = Static<typeof ResetPasswordInput>;
