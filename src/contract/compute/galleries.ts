// Microsoft.Compute/galleries.
import Type, { type Static } from 'typebox';
import { SystemData } from '../arm.js';
import { Nullable, StringMap } from '../schema.js';

export const Gallery = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  location: Type.String(),
  tags: StringMap(),
  etag: Type.String(),
  properties: Type.Object({
    description: Type.Optional(Type.String()),
    identifier: Type.Object({ uniqueName: Type.String() }),
    provisioningState: Type.String(),
  }),
  systemData: SystemData,
});
export type Gallery = Static<typeof Gallery>;

/** PUT (create or replace) and PATCH of a gallery. */
export const GalleryInput = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(StringMap()),
  properties: Type.Optional(Type.Object({ description: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))) })),
});
export type GalleryInput = Static<typeof GalleryInput>;
