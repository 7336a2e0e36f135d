// Microsoft.Resources/resourceGroups.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { Page, ResourceGroup, ResourceGroupInput } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { DELETED, page, pageQuery, preconditions } from '../arm/arm.js';
import { renderGroup } from './render.js';

const STAFF = { apiFamily: 'resources', roles: ['admin', 'creator'] } as const;
const ADMIN = { apiFamily: 'resources', roles: ['admin'] } as const;
const GroupParams = Type.Object({ sub: Type.String(), rg: Type.String() });
const GROUP = '/subscriptions/:sub/resourcegroups/:rg';

export function resourceGroupRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const publicUrl = s.config.publicUrl;

    app.get(
      '/subscriptions/:sub/resourcegroups',
      {
        config: STAFF,
        schema: {
          tags: ['resourceGroups'],
          summary: 'List resource groups',
          params: Type.Object({ sub: Type.String() }),
          response: { 200: Page(ResourceGroup) },
        },
      },
      async (req) => {
        const pq = pageQuery(req, s.config.api.defaultPageSize);
        const rows = await s.groups.list(req.params.sub, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, (g) => g.name.toLowerCase(), renderGroup);
      },
    );
    app.get(
      GROUP,
      { config: STAFF, schema: { tags: ['resourceGroups'], summary: 'Get a resource group', params: GroupParams, response: { 200: ResourceGroup } } },
      async (req, reply) => {
        const g = await s.groups.get(req.params.sub, req.params.rg);
        reply.header('ETag', g.etag);
        return renderGroup(g);
      },
    );
    app.route({
      method: 'HEAD',
      url: GROUP,
      config: STAFF,
      schema: { tags: ['resourceGroups'], params: GroupParams, hide: true },
      handler: async (req, reply) => {
        try {
          await s.groups.get(req.params.sub, req.params.rg);
          return reply.status(204).send();
        } catch {
          return reply.status(404).send();
        }
      },
    });
    app.put(
      GROUP,
      {
        config: ADMIN,
        schema: {
          tags: ['resourceGroups'],
          summary: 'Create or update a resource group',
          params: GroupParams,
          body: ResourceGroupInput,
          response: { 200: ResourceGroup, 201: ResourceGroup },
        },
      },
      async (req, reply) => {
        const { group, created } = await s.groups.createOrUpdate(req.principal, req.params.sub, req.params.rg, req.body, preconditions(req));
        reply.header('ETag', group.etag).status(created ? 201 : 200);
        return renderGroup(group);
      },
    );
    app.patch(
      GROUP,
      {
        config: ADMIN,
        schema: {
          tags: ['resourceGroups'],
          summary: "Update a resource group's tags",
          params: GroupParams,
          body: ResourceGroupInput,
          response: { 200: ResourceGroup },
        },
      },
      async (req, reply) => {
        const current = await s.groups.get(req.params.sub, req.params.rg);
        const { group } = await s.groups.createOrUpdate(
          req.principal,
          req.params.sub,
          req.params.rg,
          { location: req.body.location, tags: req.body.tags ?? current.tags },
          preconditions(req),
        );
        reply.header('ETag', group.etag);
        return renderGroup(group);
      },
    );
    app.delete(
      GROUP,
      { config: ADMIN, schema: { tags: ['resourceGroups'], summary: 'Delete an empty resource group', params: GroupParams, response: DELETED } },
      async (req, reply) => {
        const deleted = await s.groups.delete(req.params.sub, req.params.rg, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );
  };
}
