// Microsoft.Compute/galleries/images: image definitions.
import Type, { type Static } from 'typebox';
import { SystemData } from '../arm.js';
import { Nullable, StringEnum, StringMap } from '../schema.js';

export const OS_TYPES = ['Linux', 'Windows'] as const;
export const OS_STATES = ['Generalized', 'Specialized'] as const;
export type OsType = (typeof OS_TYPES)[number];
export type OsState = (typeof OS_STATES)[number];

/** A recommended range (vCPUs, memory in GB). */
export const Range = Type.Object({ min: Type.Optional(Type.Integer()), max: Type.Optional(Type.Integer()) });
export type Range = Static<typeof Range>;

const Identifier = Type.Object({ publisher: Type.String(), offer: Type.String(), sku: Type.String() });
const PurchasePlan = Type.Object({ name: Type.Optional(Type.String()), publisher: Type.Optional(Type.String()), product: Type.Optional(Type.String()) });
const Feature = Type.Object({ name: Type.String(), value: Type.String() });
const Recommended = Type.Object({ vCPUs: Type.Optional(Range), memory: Type.Optional(Range) });
const Disallowed = Type.Object({ diskTypes: Type.Optional(Type.Array(Type.String())) });

export const GalleryImageProperties = Type.Object({
  description: Type.Optional(Type.String()),
  eula: Type.Optional(Type.String()),
  privacyStatementUri: Type.Optional(Type.String()),
  releaseNoteUri: Type.Optional(Type.String()),
  osType: StringEnum(OS_TYPES),
  osState: StringEnum(OS_STATES),
  hyperVGeneration: StringEnum(['V1', 'V2']),
  endOfLifeDate: Type.Optional(Type.String()),
  identifier: Identifier,
  recommended: Recommended,
  disallowed: Type.Optional(Disallowed),
  purchasePlan: Type.Optional(PurchasePlan),
  features: Type.Optional(Type.Array(Feature)),
  architecture: StringEnum(['x64', 'Arm64']),
  provisioningState: Type.String(),
});
export type GalleryImageProperties = Static<typeof GalleryImageProperties>;

export const GalleryImage = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  location: Type.String(),
  tags: StringMap(),
  etag: Type.String(),
  properties: GalleryImageProperties,
  systemData: SystemData,
});
export type GalleryImage = Static<typeof GalleryImage>;

/** The properties of PUT and PATCH; the server checks the values and names the field it refuses. */
export const GalleryImageInputProperties = Type.Object({
  description: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
  eula: Type.Optional(Nullable(Type.String())),
  privacyStatementUri: Type.Optional(Nullable(Type.String())),
  releaseNoteUri: Type.Optional(Nullable(Type.String())),
  osType: Type.Optional(Type.String()),
  osState: Type.Optional(Type.String()),
  hyperVGeneration: Type.Optional(Type.String()),
  architecture: Type.Optional(Type.String()),
  endOfLifeDate: Type.Optional(Nullable(Type.String())),
  identifier: Type.Optional(Type.Object({ publisher: Type.Optional(Type.String()), offer: Type.Optional(Type.String()), sku: Type.Optional(Type.String()) })),
  recommended: Type.Optional(Nullable(Recommended)),
  disallowed: Type.Optional(Nullable(Disallowed)),
  features: Type.Optional(Nullable(Type.Array(Feature))),
  purchasePlan: Type.Optional(Nullable(PurchasePlan)),
});
export type GalleryImageInputProperties = Static<typeof GalleryImageInputProperties>;

/** PUT (create or replace) and PATCH of an image definition. */
export const GalleryImageInput = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(StringMap()),
  properties: Type.Optional(GalleryImageInputProperties),
});
export type GalleryImageInput = Static<typeof GalleryImageInput>;
