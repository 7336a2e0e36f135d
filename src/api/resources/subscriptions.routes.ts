// Microsoft.Resources: subscriptions and their locations (the configured regions).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { Location, Page, ROLES, Subscription } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { renderLocations, renderSubscription } from './render.js';

const ALL = { apiFamily: 'subscriptions', roles: ROLES } as const;
const SubParams = Type.Object({ sub: Type.String() });

export function subscriptionRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/subscriptions',
      { config: ALL, schema: { tags: ['subscriptions'], summary: 'List the subscriptions this token may use', response: { 200: Page(Subscription) } } },
      async () => ({ value: (await s.groups.listSubscriptions()).map(renderSubscription) }),
    );
    app.get(
      '/subscriptions/:sub',
      { config: ALL, schema: { tags: ['subscriptions'], summary: 'Get a subscription', params: SubParams, response: { 200: Subscription } } },
      async (req) => renderSubscription(await s.groups.requireSubscription(req.params.sub)),
    );
    app.get(
      '/subscriptions/:sub/locations',
      { config: ALL, schema: { tags: ['subscriptions'], summary: 'List the configured regions', params: SubParams, response: { 200: Page(Location) } } },
      async (req) => ({ value: renderLocations(await s.groups.requireSubscription(req.params.sub), s.regions) }),
    );
  };
}
