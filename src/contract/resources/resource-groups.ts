// Microsoft.Resources/resourceGroups.
import Type, { type Static } from 'typebox';
import { SystemData } from '../arm.js';
import { StringMap } from '../schema.js';

export const ResourceGroup = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  location: Type.String(),
  tags: StringMap(),
  properties: Type.Object({ provisioningState: Type.String() }),
  systemData: SystemData,
});
export type ResourceGroup = Static<typeof ResourceGroup>;

/** PUT (create or update) and PATCH (tags) of a resource group. */
export const ResourceGroupInput = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(StringMap()),
  properties: Type.Optional(Type.Object({})),
  managedBy: Type.Optional(Type.String()),
});
export type ResourceGroupInput = Static<typeof ResourceGroupInput>;
