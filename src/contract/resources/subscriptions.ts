// Microsoft.Resources: subscriptions and their locations (the configured regions).
import Type, { type Static } from 'typebox';

export const Subscription = Type.Object({
  id: Type.String(),
  subscriptionId: Type.String(),
  displayName: Type.String(),
  state: Type.String(),
  subscriptionPolicies: Type.Object({ locationPlacementId: Type.String(), quotaId: Type.String(), spendingLimit: Type.String() }),
  authorizationSource: Type.String(),
});
export type Subscription = Static<typeof Subscription>;

export const Location = Type.Object({
  id: Type.String(),
  name: Type.String(),
  displayName: Type.String(),
  regionalDisplayName: Type.String(),
  type: Type.String(),
  metadata: Type.Object({
    regionType: Type.String(),
    regionCategory: Type.String(),
    geography: Type.String(),
    geographyGroup: Type.String({ description: "The region's geography: versions replicate only inside it" }),
    pairedRegion: Type.Array(Type.Object({ name: Type.String(), id: Type.String() }), { description: 'The other regions of the geography' }),
  }),
});
export type Location = Static<typeof Location>;
