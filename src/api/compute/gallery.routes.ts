// Microsoft.Compute/galleries, images and versions: thin handlers that
// validate, call one service method and render Azure's JSON shapes.
import type { FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import { versionArmId } from '../../lib/arm-id.js';
import type { Gallery, GalleryImage } from '../../services/gallery.service.js';
import type { ImageVersion } from '../../services/image-version.service.js';
import type { Services } from '../../services/index.js';
import type { App } from '../app.js';
import { lroHeaders, page, pageQuery, preconditions, systemData } from '../arm/arm.js';

const READ = { apiFamily: 'compute', roles: ['admin', 'creator'] } as const;
const WRITE = { apiFamily: 'compute', roles: ['admin'] } as const;
const PROVIDER = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute/galleries';

const Tags = Type.Optional(Type.Record(Type.String(), Type.String()));
const Range = Type.Optional(Type.Object({ min: Type.Optional(Type.Integer()), max: Type.Optional(Type.Integer()) }));
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

const GalleryBody = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Tags,
  properties: Type.Optional(Type.Object({ description: Nullable(Type.String({ maxLength: 1024 })) })),
});

const ImageBody = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Tags,
  properties: Type.Optional(
    Type.Object({
      description: Nullable(Type.String({ maxLength: 2048 })),
      eula: Nullable(Type.String()),
      privacyStatementUri: Nullable(Type.String()),
      releaseNoteUri: Nullable(Type.String()),
      osType: Type.Optional(Type.String()),
      osState: Type.Optional(Type.String()),
      hyperVGeneration: Type.Optional(Type.String()),
      architecture: Type.Optional(Type.String()),
      endOfLifeDate: Nullable(Type.String()),
      identifier: Type.Optional(
        Type.Object({ publisher: Type.Optional(Type.String()), offer: Type.Optional(Type.String()), sku: Type.Optional(Type.String()) }),
      ),
      recommended: Nullable(Type.Object({ vCPUs: Range, memory: Range })),
      disallowed: Nullable(Type.Object({ diskTypes: Type.Optional(Type.Array(Type.String())) })),
      features: Nullable(Type.Array(Type.Object({ name: Type.String(), value: Type.String() }))),
      purchasePlan: Nullable(
        Type.Object({ name: Type.Optional(Type.String()), publisher: Type.Optional(Type.String()), product: Type.Optional(Type.String()) }),
      ),
    }),
  ),
});

const DiskSource = Type.Optional(
  Type.Object({ id: Type.Optional(Type.String()), uri: Type.Optional(Type.String()), storageAccountId: Type.Optional(Type.String()) }),
);
const VersionBody = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Tags,
  properties: Type.Optional(
    Type.Object({
      publishingProfile: Type.Optional(
        Type.Object({
          targetRegions: Type.Optional(
            Type.Array(
              Type.Object({ name: Type.String(), regionalReplicaCount: Type.Optional(Type.Integer()), storageAccountType: Type.Optional(Type.String()) }),
            ),
          ),
          replicaCount: Type.Optional(Type.Integer()),
          excludeFromLatest: Type.Optional(Type.Boolean()),
          endOfLifeDate: Nullable(Type.String()),
          storageAccountType: Type.Optional(Type.String()),
        }),
      ),
      storageProfile: Type.Optional(
        Type.Object({
          source: Type.Optional(
            Type.Object({ id: Type.Optional(Type.String()), virtualMachineId: Type.Optional(Type.String()), uri: Type.Optional(Type.String()) }),
          ),
          osDiskImage: Type.Optional(Type.Object({ hostCaching: Type.Optional(Type.String()), source: DiskSource })),
          dataDiskImages: Type.Optional(Type.Array(Type.Object({ lun: Type.Integer(), hostCaching: Type.Optional(Type.String()), source: DiskSource }))),
        }),
      ),
    }),
  ),
});

const GalleryParams = Type.Object({ sub: Type.String(), rg: Type.String(), gallery: Type.String() });
const ImageParams = Type.Object({ sub: Type.String(), rg: Type.String(), gallery: Type.String(), image: Type.String() });
const VersionParams = Type.Object({ sub: Type.String(), rg: Type.String(), gallery: Type.String(), image: Type.String(), version: Type.String() });

export function renderGallery(g: Gallery) {
  return {
    id: `/subscriptions/${g.subscriptionId}/resourceGroups/${g.resourceGroup}/providers/Microsoft.Compute/galleries/${g.name}`,
    name: g.name,
    type: 'Microsoft.Compute/galleries',
    location: g.location,
    tags: g.tags,
    etag: g.etag,
    properties: {
      description: g.description ?? undefined,
      identifier: { uniqueName: g.uniqueName },
      provisioningState: g.provisioningState,
    },
    systemData: systemData(g),
  };
}

export function renderImage(i: GalleryImage) {
  // Absent optional fields are left undefined (JSON omits them) rather than spread in: spreads make slow objects.
  return {
    id: `/subscriptions/${i.subscriptionId}/resourceGroups/${i.resourceGroup}/providers/Microsoft.Compute/galleries/${i.galleryName}/images/${i.name}`,
    name: i.name,
    type: 'Microsoft.Compute/galleries/images',
    location: i.location,
    tags: i.tags,
    etag: i.etag,
    properties: {
      description: i.description ?? undefined,
      eula: i.eula ?? undefined,
      privacyStatementUri: i.privacyStatementUri ?? undefined,
      releaseNoteUri: i.releaseNoteUri ?? undefined,
      osType: i.osType,
      osState: i.osState,
      hyperVGeneration: i.hyperVGeneration,
      endOfLifeDate: i.endOfLifeDate ?? undefined,
      identifier: i.identifier,
      recommended: i.recommended,
      disallowed: i.disallowed.diskTypes ? i.disallowed : undefined,
      purchasePlan: i.purchasePlan ?? undefined,
      features: i.features.length ? i.features : undefined,
      architecture: i.architecture,
      provisioningState: i.provisioningState,
    },
    systemData: systemData(i),
  };
}

function aggregatedState(v: ImageVersion): string {
  const states = Object.values(v.replication).map((r) => r.state);
  if (states.length === 0) return 'Unknown';
  if (states.includes('Failed')) return 'Failed';
  if (states.every((s) => s === 'Completed')) return 'Completed';
  return 'InProgress';
}

export function renderVersion(v: ImageVersion, expandReplication: boolean, usedBy?: string[]) {
  const disk = (d: ImageVersion['storage']['osDisk']) => ({
    sizeInGB: d.sizeGB,
    hostCaching: d.hostCaching,
    ...(d.lun !== undefined ? { lun: d.lun } : {}),
    ...(d.source.kind === 'empty' ? { source: { uri: d.source.uri } } : {}),
  });
  return {
    id: versionArmId(v),
    name: v.name,
    type: 'Microsoft.Compute/galleries/images/versions',
    location: v.location,
    tags: v.tags,
    etag: v.etag,
    properties: {
      publishingProfile: {
        targetRegions: v.targetRegions,
        replicaCount: v.replicaCount,
        excludeFromLatest: v.excludeFromLatest,
        publishedDate: v.publishedDate,
        ...(v.endOfLifeDate ? { endOfLifeDate: v.endOfLifeDate } : {}),
        storageAccountType: v.targetRegions[0]?.storageAccountType ?? 'Standard_LRS',
      },
      provisioningState: v.provisioningState,
      storageProfile: {
        ...(v.storage.sourceId ? { source: { id: v.storage.sourceId } } : {}),
        ...(v.storage.sourceVirtualMachineId ? { source: { virtualMachineId: v.storage.sourceVirtualMachineId } } : {}),
        osDiskImage: disk(v.storage.osDisk),
        ...(v.storage.dataDisks.length ? { dataDiskImages: v.storage.dataDisks.map(disk) } : {}),
      },
      // labforge: what still uses the version (it cannot be deleted while anything does).
      ...(usedBy?.length ? { usedBy } : {}),
      ...(expandReplication
        ? {
            replicationStatus: {
              aggregatedState: aggregatedState(v),
              summary: Object.entries(v.replication).map(([region, r]) => ({
                region,
                state: r.state,
                ...(r.details ? { details: r.details } : {}),
                progress: r.progress,
              })),
            },
          }
        : {}),
    },
    systemData: systemData(v),
  };
}

const expandsReplication = (q: unknown) => /replicationstatus/i.test(String((q as Record<string, unknown>).$expand ?? ''));

export function computeRoutes(s: Services): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify as unknown as App;
    const publicUrl = s.config.publicUrl;
    const pageSize = s.config.api.defaultPageSize;

    // ---- galleries ----
    app.get(
      '/subscriptions/:sub/providers/Microsoft.Compute/galleries',
      { config: READ, schema: { tags: ['galleries'], summary: 'List galleries in a subscription', params: Type.Object({ sub: Type.String() }) } },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.galleries.listGalleries(req.params.sub, undefined, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, (g) => `${g.resourceGroup.toLowerCase()}/${g.name.toLowerCase()}`, renderGallery);
      },
    );
    app.get(
      PROVIDER,
      {
        config: READ,
        schema: { tags: ['galleries'], summary: 'List galleries in a resource group', params: Type.Object({ sub: Type.String(), rg: Type.String() }) },
      },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.galleries.listGalleries(req.params.sub, req.params.rg, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, (g) => `${g.resourceGroup.toLowerCase()}/${g.name.toLowerCase()}`, renderGallery);
      },
    );
    app.get(`${PROVIDER}/:gallery`, { config: READ, schema: { tags: ['galleries'], params: GalleryParams } }, async (req, reply) => {
      const g = await s.galleries.getGallery(req.params.sub, req.params.rg, req.params.gallery);
      reply.header('ETag', g.etag);
      return renderGallery(g);
    });
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${PROVIDER}/:gallery`,
        config: WRITE,
        schema: {
          tags: ['galleries'],
          summary: method === 'PUT' ? 'Create or replace a gallery' : 'Update a gallery',
          params: GalleryParams,
          body: GalleryBody,
        },
        handler: async (req, reply) => {
          const { sub, rg, gallery } = req.params;
          const body = req.body;
          const { gallery: g, created } = await s.galleries.createOrUpdateGallery(
            req.principal,
            sub,
            rg,
            gallery,
            { location: body.location, tags: body.tags, description: body.properties?.description },
            method === 'PUT' ? 'put' : 'patch',
            preconditions(req),
          );
          reply.header('ETag', g.etag).status(created ? 201 : 200);
          return renderGallery(g);
        },
      });
    }
    app.delete(
      `${PROVIDER}/:gallery`,
      { config: WRITE, schema: { tags: ['galleries'], summary: 'Delete an empty gallery', params: GalleryParams } },
      async (req, reply) => {
        const deleted = await s.galleries.deleteGallery(req.params.sub, req.params.rg, req.params.gallery, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );

    // ---- image definitions ----
    app.get(
      `${PROVIDER}/:gallery/images`,
      { config: READ, schema: { tags: ['images'], summary: 'List image definitions', params: GalleryParams } },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.galleries.listImages(req.params.sub, req.params.rg, req.params.gallery, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, (i) => i.name.toLowerCase(), renderImage);
      },
    );
    app.get(`${PROVIDER}/:gallery/images/:image`, { config: READ, schema: { tags: ['images'], params: ImageParams } }, async (req, reply) => {
      const i = await s.galleries.getImage(req.params.sub, req.params.rg, req.params.gallery, req.params.image);
      reply.header('ETag', i.etag);
      return renderImage(i);
    });
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${PROVIDER}/:gallery/images/:image`,
        config: WRITE,
        schema: {
          tags: ['images'],
          summary: method === 'PUT' ? 'Create or replace an image definition' : 'Update an image definition',
          params: ImageParams,
          body: ImageBody,
        },
        handler: async (req, reply) => {
          const { sub, rg, gallery, image } = req.params;
          const { location, tags, properties } = req.body;
          const { image: i, created } = await s.galleries.createOrUpdateImage(
            req.principal,
            sub,
            rg,
            gallery,
            image,
            { location, tags, ...(properties ?? {}) },
            method === 'PUT' ? 'put' : 'patch',
            preconditions(req),
          );
          reply.header('ETag', i.etag).status(created ? 201 : 200);
          return renderImage(i);
        },
      });
    }
    app.delete(
      `${PROVIDER}/:gallery/images/:image`,
      { config: WRITE, schema: { tags: ['images'], summary: 'Delete an image definition without versions', params: ImageParams } },
      async (req, reply) => {
        const deleted = await s.galleries.deleteImage(req.params.sub, req.params.rg, req.params.gallery, req.params.image, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );

    // ---- image versions ----
    app.get(
      `${PROVIDER}/:gallery/images/:image/versions`,
      { config: READ, schema: { tags: ['versions'], summary: 'List image versions', params: ImageParams } },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.versions.list(req.params.sub, req.params.rg, req.params.gallery, req.params.image, pq.after, pq.limit + 1);
        const expand = expandsReplication(req.query);
        const used = await s.versions.usedBy(rows.map((v) => v.key));
        return page(
          req,
          publicUrl,
          rows,
          pq,
          (v) => v.name,
          (v) => renderVersion(v, expand, used.get(v.key)),
        );
      },
    );
    app.get(
      `${PROVIDER}/:gallery/images/:image/versions/:version`,
      { config: READ, schema: { tags: ['versions'], summary: 'Get an image version; "latest" resolves to the newest usable one', params: VersionParams } },
      async (req, reply) => {
        const { sub, rg, gallery, image, version } = req.params;
        const v = await s.versions.get(sub, rg, gallery, image, version);
        reply.header('ETag', v.etag);
        return renderVersion(v, expandsReplication(req.query), (await s.versions.usedBy([v.key])).get(v.key));
      },
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${PROVIDER}/:gallery/images/:image/versions/:version`,
        config: WRITE,
        schema: {
          tags: ['versions'],
          summary: method === 'PUT' ? 'Create an image version (long-running) or update its publishing profile' : 'Update an image version',
          params: VersionParams,
          body: VersionBody,
        },
        handler: async (req, reply) => {
          const { sub, rg, gallery, image, version } = req.params;
          const { location, tags, properties } = req.body;
          const {
            version: v,
            created,
            operation,
          } = await s.versions.createOrUpdate(
            req.principal,
            sub,
            rg,
            gallery,
            image,
            version,
            { location, tags, publishingProfile: properties?.publishingProfile, storageProfile: properties?.storageProfile },
            method === 'PUT' ? 'put' : 'patch',
            preconditions(req),
          );
          if (operation) lroHeaders(reply, req, publicUrl, operation);
          reply.header('ETag', v.etag).status(created ? 201 : 200);
          return renderVersion(v, true);
        },
      });
    }
    app.get(
      `${PROVIDER}/:gallery/images/:image/versions/:version/export`,
      {
        config: READ,
        schema: {
          tags: ['versions'],
          summary: 'Download a disk of a version as raw, fixed VHD (Azure/Hyper-V) or qcow2 (labforge extension)',
          params: VersionParams,
          querystring: Type.Object({
            'api-version': Type.Optional(Type.String()),
            format: Type.Optional(Type.String()),
            disk: Type.Optional(Type.String()),
            region: Type.Optional(Type.String()),
          }),
        },
      },
      async (req, reply) => {
        const { sub, rg, gallery, image, version } = req.params;
        const out = await s.versions.exportContent(sub, rg, gallery, image, version, {
          format: req.query.format ?? 'vhd',
          disk: req.query.disk,
          region: req.query.region,
        });
        reply.raw.once('close', () => void out.cleanup());
        return reply
          .header('content-type', 'application/octet-stream')
          .header('content-length', String(out.length))
          .header('content-disposition', `attachment; filename="${out.fileName}"`)
          .send(out.stream);
      },
    );
    app.delete(
      `${PROVIDER}/:gallery/images/:image/versions/:version`,
      { config: WRITE, schema: { tags: ['versions'], summary: 'Delete an image version', params: VersionParams } },
      async (req, reply) => {
        const { sub, rg, gallery, image, version } = req.params;
        const deleted = await s.versions.delete(sub, rg, gallery, image, version, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );
  };
}
