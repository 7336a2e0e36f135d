// Microsoft.LabServices/labs.
import Type, { type Static } from 'typebox';
import { SystemData } from '../arm.js';
import { Nullable, StringEnum, StringMap } from '../schema.js';
import { AutoShutdownProfile, AutoShutdownProfileInput, ConnectionProfile, ConnectionProfileInput } from './profiles.js';

export const LAB_STATES = ['Draft', 'Publishing', 'Scaling', 'Syncing', 'Published'] as const;
export type LabState = (typeof LAB_STATES)[number];

export const Lab = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  location: Type.String(),
  tags: StringMap(),
  systemData: SystemData,
  properties: Type.Object({
    autoShutdownProfile: AutoShutdownProfile,
    connectionProfile: ConnectionProfile,
    virtualMachineProfile: Type.Object({
      createOption: Type.String(),
      imageReference: Type.Object({ id: Type.String(), exactVersion: Type.Optional(Type.String()) }),
      osType: Type.String(),
      sku: Type.Object({ name: Type.String(), capacity: Type.Integer() }),
      additionalCapabilities: Type.Object({ installGpuDrivers: Type.String() }),
      usageQuota: Type.String(),
      useSharedPassword: Type.String(),
      adminUser: Type.Optional(Type.Object({ username: Type.String() })),
      nonAdminUser: Type.Optional(Type.Object({ username: Type.String() })),
    }),
    securityProfile: Type.Object({
      registrationCode: Type.Optional(Type.String({ description: 'Shown to lab staff only' })),
      openAccess: Type.String(),
    }),
    labPlanId: Type.Optional(Type.String()),
    title: Type.String(),
    description: Type.Optional(Type.String()),
    provisioningState: Type.String(),
    state: StringEnum(LAB_STATES),
  }),
});
export type Lab = Static<typeof Lab>;

const Credentials = Type.Object({ username: Type.Optional(Type.String()), password: Type.Optional(Type.String()) });

/** PUT (create: builds and starts the template) and PATCH (title, description, profiles, capacity) of a lab; the server checks the values. */
export const LabInput = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(StringMap()),
  properties: Type.Optional(
    Type.Object({
      labPlanId: Type.Optional(Type.String()),
      title: Type.Optional(Type.String()),
      description: Type.Optional(Nullable(Type.String())),
      autoShutdownProfile: Type.Optional(AutoShutdownProfileInput),
      connectionProfile: Type.Optional(ConnectionProfileInput),
      securityProfile: Type.Optional(Type.Object({ openAccess: Type.Optional(Type.String()) })),
      virtualMachineProfile: Type.Optional(
        Type.Object({
          createOption: Type.Optional(Type.String()),
          imageReference: Type.Optional(Type.Object({ id: Type.Optional(Type.String()) })),
          sku: Type.Optional(Type.Object({ name: Type.Optional(Type.String()), capacity: Type.Optional(Type.Number()) })),
          adminUser: Type.Optional(Credentials),
          nonAdminUser: Type.Optional(Credentials),
          usageQuota: Type.Optional(Type.String()),
          useSharedPassword: Type.Optional(Type.String()),
          additionalCapabilities: Type.Optional(Type.Object({ installGpuDrivers: Type.Optional(Type.String()) })),
          customData: Type.Optional(Type.String({ description: "labforge: base64 of a #cloud-config document for the template's first boot" })),
        }),
      ),
    }),
  ),
});
export type LabInput = Static<typeof LabInput>;
