// Microsoft.Compute/galleries/images/versions: image versions, their
// content (uploads, other versions, VMs, blank disks) and replication.
import Type, { type Static } from 'typebox';
import { SystemData } from '../arm.js';
import { Nullable, StringMap } from '../schema.js';

export const TargetRegion = Type.Object({ name: Type.String(), regionalReplicaCount: Type.Integer(), storageAccountType: Type.String() });
export type TargetRegion = Static<typeof TargetRegion>;

export const PublishingProfile = Type.Object({
  targetRegions: Type.Array(TargetRegion),
  replicaCount: Type.Integer(),
  excludeFromLatest: Type.Boolean(),
  publishedDate: Type.String(),
  endOfLifeDate: Type.Optional(Type.String()),
  storageAccountType: Type.String(),
});

export const DiskImage = Type.Object({
  sizeInGB: Type.Number(),
  hostCaching: Type.String(),
  lun: Type.Optional(Type.Integer()),
  source: Type.Optional(Type.Object({ uri: Type.String() }, { description: 'Shown for blank disks (labforge:empty-disk?sizeGB=N)' })),
});
export type DiskImage = Static<typeof DiskImage>;

export const ReplicationSummary = Type.Object({ region: Type.String(), state: Type.String(), details: Type.Optional(Type.String()), progress: Type.Number() });
export type ReplicationSummary = Static<typeof ReplicationSummary>;

export const ReplicationStatus = Type.Object({ aggregatedState: Type.String(), summary: Type.Array(ReplicationSummary) });
export type ReplicationStatus = Static<typeof ReplicationStatus>;

export const ImageVersionProperties = Type.Object({
  publishingProfile: PublishingProfile,
  provisioningState: Type.String(),
  storageProfile: Type.Object({
    source: Type.Optional(Type.Object({ id: Type.Optional(Type.String()), virtualMachineId: Type.Optional(Type.String()) })),
    osDiskImage: DiskImage,
    dataDiskImages: Type.Optional(Type.Array(DiskImage)),
  }),
  usedBy: Type.Optional(Type.Array(Type.String(), { description: 'labforge: the VMs and labs that use the version (it cannot be deleted while any do)' })),
  replicationStatus: Type.Optional(ReplicationStatus),
});

export const ImageVersion = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  location: Type.String(),
  tags: StringMap(),
  etag: Type.String(),
  properties: ImageVersionProperties,
  systemData: SystemData,
});
export type ImageVersion = Static<typeof ImageVersion>;

/** A target region as a request names it; the server fills in the defaults. */
export const TargetRegionInput = Type.Object({
  name: Type.String(),
  regionalReplicaCount: Type.Optional(Type.Integer()),
  storageAccountType: Type.Optional(Type.String()),
});
export type TargetRegionInput = Static<typeof TargetRegionInput>;

const DiskSourceInput = Type.Object({ id: Type.Optional(Type.String()), uri: Type.Optional(Type.String()), storageAccountId: Type.Optional(Type.String()) });

/** PUT (create, or change the publishing profile) and PATCH of a version. */
export const ImageVersionInput = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(StringMap()),
  properties: Type.Optional(
    Type.Object({
      publishingProfile: Type.Optional(
        Type.Object({
          targetRegions: Type.Optional(Type.Array(TargetRegionInput)),
          replicaCount: Type.Optional(Type.Integer()),
          excludeFromLatest: Type.Optional(Type.Boolean()),
          endOfLifeDate: Type.Optional(Nullable(Type.String())),
          storageAccountType: Type.Optional(Type.String()),
        }),
      ),
      storageProfile: Type.Optional(
        Type.Object({
          source: Type.Optional(
            Type.Object({ id: Type.Optional(Type.String()), virtualMachineId: Type.Optional(Type.String()), uri: Type.Optional(Type.String()) }),
          ),
          osDiskImage: Type.Optional(Type.Object({ hostCaching: Type.Optional(Type.String()), source: Type.Optional(DiskSourceInput) })),
          dataDiskImages: Type.Optional(
            Type.Array(Type.Object({ lun: Type.Integer(), hostCaching: Type.Optional(Type.String()), source: Type.Optional(DiskSourceInput) })),
          ),
        }),
      ),
    }),
  ),
});
export type ImageVersionInput = Static<typeof ImageVersionInput>;
