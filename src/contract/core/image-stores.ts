// Labforge.Core/imageStores: usage and cost (verify and gc answer with an operation).
import Type, { type Static } from 'typebox';
import { Nullable } from '../schema.js';

/** Bytes of one version in one region: logical size, stored, only its own (what deleting it frees), and its monthly cost. */
export const UsageRow = Type.Object({
  region: Type.String(),
  gallery: Nullable(Type.String()),
  image: Nullable(Type.String()),
  version: Nullable(Type.String()),
  logicalBytes: Type.Number(),
  storedBytes: Type.Number(),
  uniqueBytes: Type.Number(),
  replicas: Type.Integer(),
  monthlyCost: Type.Number(),
});
export type UsageRow = Static<typeof UsageRow>;

export const Usage = Type.Object({
  pricePerGiBMonth: Type.Number(),
  regions: Type.Array(Type.Object({ region: Type.String(), totalStoredBytes: Type.Number(), monthlyCost: Type.Number() })),
  versions: Type.Array(UsageRow),
});
export type Usage = Static<typeof Usage>;

/** One region's result of verify (an operation's `properties.result` is the list of them). */
export const VerifyReport = Type.Object({
  region: Type.String(),
  chunksChecked: Type.Integer(),
  bytesChecked: Type.Number(),
  corrupt: Type.Array(Type.String()),
  missing: Type.Array(Type.String()),
  repaired: Type.Array(Type.String()),
  unrepairable: Type.Array(Type.String()),
  packsUnreadable: Type.Array(Type.String(), { description: 'Packs whose index could not be read: set aside, their chunks repaired like missing ones' }),
  damagedManifests: Type.Array(Type.String(), {
    description: 'Manifests (versions, lab snapshots) in the region that use an unrepairable chunk: their content is damaged',
  }),
});
export type VerifyReport = Static<typeof VerifyReport>;

/** One region's result of garbage collection (an operation's `properties.result` is the list of them). */
export const GcReport = Type.Object({
  region: Type.String(),
  chunksKept: Type.Integer(),
  chunksRemoved: Type.Integer(),
  bytesFreed: Type.Number(),
  chunksInGrace: Type.Integer({ description: 'Unreferenced chunks spared because they are younger than the grace period' }),
  packsRewritten: Type.Integer(),
});
export type GcReport = Static<typeof GcReport>;
