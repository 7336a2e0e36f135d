// Microsoft.Resources: subscriptions, locations and resource groups.
import type { FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import type { Services } from '../../services/index.js';
import type { ResourceGroup, Subscription } from '../../services/resource-group.service.js';
import type { App } from '../app.js';
import { page, pageQuery, preconditions } from '../arm/arm.js';

const ALL = ['admin', 'creator', 'user'] as const;
const STAFF = ['admin', 'creator'] as const;

const GroupParams = Type.Object({ sub: Type.String(), rg: Type.String() });
const GroupBody = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(Type.Record(Type.String(), Type.String())),
  properties: Type.Optional(Type.Object({})),
  managedBy: Type.Optional(Type.String()),
});

export function renderGroup(g: ResourceGroup) {
  return {
    id: `/subscriptions/${g.subscriptionId}/resourceGroups/${g.name}`,
    name: g.name,
    type: 'Microsoft.Resources/resourceGroups',
    location: g.location,
    tags: g.tags,
    properties: { provisioningState: 'Succeeded' },
    systemData: {
      createdBy: g.createdBy,
      createdByType: g.createdByType,
      createdAt: g.createdAt,
      lastModifiedBy: g.modifiedBy,
      lastModifiedByType: g.modifiedByType,
      lastModifiedAt: g.modifiedAt,
    },
  };
}

export function resourceRoutes(s: Services): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify as unknown as App;
    const publicUrl = s.config.publicUrl;

    const renderSubscription = (x: Subscription) => ({
      id: `/subscriptions/${x.id}`,
      subscriptionId: x.id,
      displayName: x.displayName,
      state: x.state,
      subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'Labforge', spendingLimit: 'Off' },
      authorizationSource: 'RoleBased',
    });

    app.get(
      '/subscriptions',
      { config: { apiFamily: 'subscriptions', roles: ALL }, schema: { tags: ['subscriptions'], summary: 'List the subscriptions this token may use' } },
      async () => ({ value: (await s.groups.listSubscriptions()).map(renderSubscription) }),
    );

    app.get(
      '/subscriptions/:sub',
      {
        config: { apiFamily: 'subscriptions', roles: ALL },
        schema: { tags: ['subscriptions'], summary: 'Get a subscription', params: Type.Object({ sub: Type.String() }) },
      },
      async (req) => renderSubscription(await s.groups.requireSubscription(req.params.sub)),
    );

    app.get(
      '/subscriptions/:sub/locations',
      {
        config: { apiFamily: 'subscriptions', roles: ALL },
        schema: { tags: ['subscriptions'], summary: 'List the configured regions', params: Type.Object({ sub: Type.String() }) },
      },
      async (req) => {
        const sub = await s.groups.requireSubscription(req.params.sub);
        return {
          value: s.regions.regions.map((r) => ({
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
              pairedRegion: s.regions
                .inGeography(r.geography)
                .filter((x) => x.name !== r.name)
                .map((x) => ({ name: x.name, id: `/subscriptions/${sub.id}/locations/${x.name}` })),
            },
          })),
        };
      },
    );

    app.get(
      '/subscriptions/:sub/resourcegroups',
      {
        config: { apiFamily: 'resources', roles: STAFF },
        schema: { tags: ['resourceGroups'], summary: 'List resource groups', params: Type.Object({ sub: Type.String() }) },
      },
      async (req) => {
        const pq = pageQuery(req, s.config.api.defaultPageSize);
        const rows = await s.groups.list(req.params.sub, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, (g) => g.name.toLowerCase(), renderGroup);
      },
    );

    app.get(
      '/subscriptions/:sub/resourcegroups/:rg',
      { config: { apiFamily: 'resources', roles: STAFF }, schema: { tags: ['resourceGroups'], params: GroupParams } },
      async (req, reply) => {
        const g = await s.groups.get(req.params.sub, req.params.rg);
        reply.header('ETag', g.etag);
        return renderGroup(g);
      },
    );

    app.route({
      method: 'HEAD',
      url: '/subscriptions/:sub/resourcegroups/:rg',
      config: { apiFamily: 'resources', roles: STAFF },
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
      '/subscriptions/:sub/resourcegroups/:rg',
      {
        config: { apiFamily: 'resources', roles: ['admin'] },
        schema: { tags: ['resourceGroups'], summary: 'Create or update a resource group', params: GroupParams, body: GroupBody },
      },
      async (req, reply) => {
        const { group, created } = await s.groups.createOrUpdate(req.principal, req.params.sub, req.params.rg, req.body, preconditions(req));
        reply.header('ETag', group.etag).status(created ? 201 : 200);
        return renderGroup(group);
      },
    );

    app.patch(
      '/subscriptions/:sub/resourcegroups/:rg',
      { config: { apiFamily: 'resources', roles: ['admin'] }, schema: { tags: ['resourceGroups'], params: GroupParams, body: GroupBody } },
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
      '/subscriptions/:sub/resourcegroups/:rg',
      {
        config: { apiFamily: 'resources', roles: ['admin'] },
        schema: { tags: ['resourceGroups'], summary: 'Delete an empty resource group', params: GroupParams },
      },
      async (req, reply) => {
        const deleted = await s.groups.delete(req.params.sub, req.params.rg, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );
  };
}
