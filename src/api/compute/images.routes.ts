// Microsoft.Compute/galleries/images: image definitions.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { GalleryImage, GalleryImageInput, Page } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { DELETED, page, pageQuery, preconditions } from '../arm/arm.js';
import { CACHED_READ, GALLERIES, GalleryParams, WRITE } from './galleries.routes.js';
import { renderImage } from './render.js';

export const ImageParams = Type.Object({ sub: Type.String(), rg: Type.String(), gallery: Type.String(), image: Type.String() });

export function imageRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const publicUrl = s.config.publicUrl;
    const pageSize = s.config.api.defaultPageSize;

    app.get(
      `${GALLERIES}/:gallery/images`,
      { config: CACHED_READ, schema: { tags: ['images'], summary: 'List image definitions', params: GalleryParams, response: { 200: Page(GalleryImage) } } },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.galleries.listImages(req.params.sub, req.params.rg, req.params.gallery, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, (i) => i.name.toLowerCase(), renderImage);
      },
    );
    app.get(
      `${GALLERIES}/:gallery/images/:image`,
      { config: CACHED_READ, schema: { tags: ['images'], summary: 'Get an image definition', params: ImageParams, response: { 200: GalleryImage } } },
      async (req, reply) => {
        const i = await s.galleries.getImage(req.params.sub, req.params.rg, req.params.gallery, req.params.image);
        reply.header('ETag', i.etag);
        return renderImage(i);
      },
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${GALLERIES}/:gallery/images/:image`,
        config: WRITE,
        schema: {
          tags: ['images'],
          summary: method === 'PUT' ? 'Create or replace an image definition' : 'Update an image definition',
          params: ImageParams,
          body: GalleryImageInput,
          response: { 200: GalleryImage, 201: GalleryImage },
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
      `${GALLERIES}/:gallery/images/:image`,
      { config: WRITE, schema: { tags: ['images'], summary: 'Delete an image definition without versions', params: ImageParams, response: DELETED } },
      async (req, reply) => {
        const deleted = await s.galleries.deleteImage(req.params.sub, req.params.rg, req.params.gallery, req.params.image, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );
  };
}
