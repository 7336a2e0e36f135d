// Microsoft.Resources' JSON: subscriptions, locations and resource groups, as
// the wire contract (src/contract/resources) declares them.
import type { Location, ResourceGroup as ResourceGroupWire, Subscription as SubscriptionWire } from '../../contract/index.js';
import { resourceGroupArmId } from '../../lib/arm-id.js';
import type { RegionCatalog } from '../../services/common.js';
import type { ResourceGroup, Subscription } from '../../services/resource-group.service.js';
import { systemData } from '../arm/arm.js';

export function renderGroup(g: ResourceGroup): ResourceGroupWire {
  return {
    id: resourceGroupArmId(g),
    name: g.name,
    type: 'Microsoft.Resources/resourceGroups',
    location: g.location,
    tags: g.tags,
    properties: { provisioningState: 'Succeeded' },
    systemData: systemData(g),
  };
}

export const renderSubscription = (x: Subscription): SubscriptionWire => ({
  id: `/subscriptions/${x.id}`,
  subscriptionId: x.id,
  displayName: x.displayName,
  state: x.state,
  subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'Labforge', spendingLimit: 'Off' },
  authorizationSource: 'RoleBased',
});

/** The configured regions of a subscription; the other regions of a geography are its paired regions. */
export function renderLocations(sub: Subscription, regions: RegionCatalog): Location[] {
  return regions.regions.map((r) => ({
    id: `/subscriptions/${sub.id}/locations/${r.name}`,
    name: r.name,
    displayName: r.displayName,
    regionalDisplayName: `(${r.geographyDisplayName}) ${r.displayName}`,
    type: 'Region',
    metadata: {
      regionType: 'Physical',
      regionCategory: 'Recommended',
      geography: r.geographyDisplayName,
      geographyGroup: r.geography,
      pairedRegion: regions
        .inGeography(r.geography)
        .filter((x) => x.name !== r.name)
        .map((x) => ({ name: x.name, id: `/subscriptions/${sub.id}/locations/${x.name}` })),
    },
  }));
}
