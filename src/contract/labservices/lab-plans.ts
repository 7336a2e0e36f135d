// Microsoft.LabServices/labPlans (lab accounts), the images they offer, and
// saving a lab VM to the plan's gallery.
import Type, { type Static } from 'typebox';
import { SystemData } from '../arm.js';
import { Nullable, OpenObject, StringEnum, StringMap } from '../schema.js';
import { AutoShutdownProfile, AutoShutdownProfileInput, ConnectionProfile, ConnectionProfileInput } from './profiles.js';

export const LabPlan = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  location: Type.String(),
  tags: StringMap(),
  systemData: SystemData,
  properties: Type.Object({
    defaultConnectionProfile: ConnectionProfile,
    defaultAutoShutdownProfile: AutoShutdownProfile,
    defaultNetworkProfile: OpenObject({ description: 'Not used by labforge' }),
    allowedRegions: Type.Array(Type.String()),
    sharedGalleryId: Type.Optional(Type.String()),
    supportInfo: Type.Optional(OpenObject()),
    linkedLmsInstance: Type.Optional(Type.String()),
    provisioningState: Type.String(),
  }),
});
export type LabPlan = Static<typeof LabPlan>;

/** PUT (create or replace) and PATCH of a lab plan; `sharedGalleryId` attaches a gallery, null detaches it. */
export const LabPlanInput = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(StringMap()),
  properties: Type.Optional(
    Type.Object({
      allowedRegions: Type.Optional(Type.Array(Type.String())),
      defaultConnectionProfile: Type.Optional(ConnectionProfileInput),
      defaultAutoShutdownProfile: Type.Optional(AutoShutdownProfileInput),
      sharedGalleryId: Type.Optional(Nullable(Type.String())),
      supportInfo: Type.Optional(Nullable(Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: true }))),
      linkedLmsInstance: Type.Optional(Nullable(Type.String())),
    }),
  ),
});
export type LabPlanInput = Static<typeof LabPlanInput>;

export const HIDDEN_REASONS = ['Disabled', 'NoVersion', 'MultipleDisks', 'TooLarge', 'NotReplicatedToRegion'] as const;
export type HiddenReason = (typeof HIDDEN_REASONS)[number];

/** An image a lab plan offers (or, for admins asking, hides and why). */
export const LabPlanImage = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  properties: Type.Object({
    enabledState: StringEnum(['Enabled', 'Disabled']),
    provisioningState: Type.String(),
    displayName: Type.String(),
    description: Type.Optional(Type.String()),
    author: Type.String(),
    osType: Type.String(),
    osState: Type.String(),
    offer: Type.String(),
    publisher: Type.String(),
    sku: Type.String(),
    version: Type.Optional(Type.String()),
    sharedGalleryId: Type.String(),
    availableRegions: Type.Array(Type.String()),
    termsStatus: Type.String(),
    osDiskSizeGB: Type.Optional(Type.Number({ description: 'labforge' })),
    dataDiskCount: Type.Integer({ description: 'labforge' }),
    builtin: Type.Boolean({ description: 'labforge: one of the images built into the server' }),
    hiddenReasons: Type.Optional(Type.Array(StringEnum(HIDDEN_REASONS), { description: 'labforge (admins, includeHidden=true): why creators do not see it' })),
  }),
});
export type LabPlanImage = Static<typeof LabPlanImage>;

/** PUT and PATCH of a plan's image: offer it to creators or not. */
export const LabPlanImageInput = Type.Object({ properties: Type.Object({ enabledState: Type.String() }) });
export type LabPlanImageInput = Static<typeof LabPlanImageInput>;

/** POST …/labPlans/{plan}/saveImage. */
export const SaveImageInput = Type.Object({
  name: Type.Optional(Type.String()),
  labVirtualMachineId: Type.Optional(Type.String()),
  updateExisting: Type.Optional(Type.Boolean({ description: "labforge: a new version of the lab's image instead of a new definition" })),
});
export type SaveImageInput = Static<typeof SaveImageInput>;

/** What saving a lab VM makes (labforge): the image definition and the version its operation creates. */
export const SavedImage = Type.Object({ imageId: Type.String(), version: Type.String() });
export type SavedImage = Static<typeof SavedImage>;
