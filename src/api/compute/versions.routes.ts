// Microsoft.Compute/galleries/images/versions: image versions (creating one
// is long-running) and downloading their disks (a labforge extension).
import type { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ImageVersion, ImageVersionInput, Page } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { DELETED, lroHeaders, page, pageQuery, preconditions } from '../arm/arm.js';
import { CACHED_READ, GALLERIES, READ, WRITE } from './galleries.routes.js';
import { ImageParams } from './images.routes.js';
import { renderVersion } from './render.js';

const VersionParams = Type.Object({ sub: Type.String(), rg: Type.String(), gallery: Type.String(), image: Type.String(), version: Type.String() });
const VERSIONS = `${GALLERIES}/:gallery/images/:image/versions`;

const expandsReplication = (q: unknown) => /replicationstatus/i.test(String((q as Record<string, unknown>).$expand ?? ''));

export function versionRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const publicUrl = s.config.publicUrl;
    const pageSize = s.config.api.defaultPageSize;

    app.get(
      VERSIONS,
      {
        config: CACHED_READ,
        schema: {
          tags: ['versions'],
          summary: 'List image versions ($expand=ReplicationStatus adds replication)',
          params: ImageParams,
          response: { 200: Page(ImageVersion) },
        },
      },
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
      `${VERSIONS}/:version`,
      {
        config: CACHED_READ,
        schema: {
          tags: ['versions'],
          summary: 'Get an image version; "latest" resolves to the newest usable one',
          params: VersionParams,
          response: { 200: ImageVersion },
        },
      },
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
        url: `${VERSIONS}/:version`,
        config: WRITE,
        schema: {
          tags: ['versions'],
          summary: method === 'PUT' ? 'Create an image version (long-running) or update its publishing profile' : 'Update an image version',
          params: VersionParams,
          body: ImageVersionInput,
          response: { 200: ImageVersion, 201: ImageVersion },
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
      `${VERSIONS}/:version/export`,
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
          response: {
            200: Type.Unsafe<Readable>({
              description: 'The disk image',
              content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
            }),
          },
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
      `${VERSIONS}/:version`,
      { config: WRITE, schema: { tags: ['versions'], summary: 'Delete an image version', params: VersionParams, response: DELETED } },
      async (req, reply) => {
        const { sub, rg, gallery, image, version } = req.params;
        const deleted = await s.versions.delete(sub, rg, gallery, image, version, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );
  };
}
