// Microsoft.Compute/galleries: thin handlers that validate, call one service
// method and render (render.ts).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { Gallery, GalleryInput, Page } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { DELETED, page, pageQuery, preconditions } from '../arm/arm.js';
import { renderGallery } from './render.js';

export const READ = { apiFamily: 'compute', roles: ['admin', 'creator'] } as const;
/** Reads of galleries, images and versions depend only on the database: their answers are kept until it changes (response-cache.ts). */
export const CACHED_READ = { ...READ, cacheable: true } as const;
export const WRITE = { apiFamily: 'compute', roles: ['admin'] } as const;
export const GALLERIES = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute/galleries';
export const GalleryParams = Type.Object({ sub: Type.String(), rg: Type.String(), gallery: Type.String() });

const galleryKey = (g: { resourceGroup: string; name: string }) => `${g.resourceGroup.toLowerCase()}/${g.name.toLowerCase()}`;

export function galleryRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const publicUrl = s.config.publicUrl;
    const pageSize = s.config.api.defaultPageSize;

    app.get(
      '/subscriptions/:sub/providers/Microsoft.Compute/galleries',
      {
        config: CACHED_READ,
        schema: {
          tags: ['galleries'],
          summary: 'List galleries in a subscription',
          params: Type.Object({ sub: Type.String() }),
          response: { 200: Page(Gallery) },
        },
      },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.galleries.listGalleries(req.params.sub, undefined, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, galleryKey, renderGallery);
      },
    );
    app.get(
      GALLERIES,
      {
        config: CACHED_READ,
        schema: {
          tags: ['galleries'],
          summary: 'List galleries in a resource group',
          params: Type.Object({ sub: Type.String(), rg: Type.String() }),
          response: { 200: Page(Gallery) },
        },
      },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.galleries.listGalleries(req.params.sub, req.params.rg, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, galleryKey, renderGallery);
      },
    );
    app.get(
      `${GALLERIES}/:gallery`,
      { config: CACHED_READ, schema: { tags: ['galleries'], summary: 'Get a gallery', params: GalleryParams, response: { 200: Gallery } } },
      async (req, reply) => {
        const g = await s.galleries.getGallery(req.params.sub, req.params.rg, req.params.gallery);
        reply.header('ETag', g.etag);
        return renderGallery(g);
      },
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${GALLERIES}/:gallery`,
        config: WRITE,
        schema: {
          tags: ['galleries'],
          summary: method === 'PUT' ? 'Create or replace a gallery' : 'Update a gallery',
          params: GalleryParams,
          body: GalleryInput,
          response: { 200: Gallery, 201: Gallery },
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
      `${GALLERIES}/:gallery`,
      { config: WRITE, schema: { tags: ['galleries'], summary: 'Delete an empty gallery', params: GalleryParams, response: DELETED } },
      async (req, reply) => {
        const deleted = await s.galleries.deleteGallery(req.params.sub, req.params.rg, req.params.gallery, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );
  };
}
