// Microsoft.Resources: subscriptions, locations and resource groups.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Services } from '../../services/index.js';
import { resourceGroupRoutes } from './resource-groups.routes.js';
import { subscriptionRoutes } from './subscriptions.routes.js';

export function resourceRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    await app.register(subscriptionRoutes(s));
    await app.register(resourceGroupRoutes(s));
  };
}
