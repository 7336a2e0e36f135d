// labforge's own resources (provider Labforge.Core): operations, image
// stores, tokens and whoami, hosts, accounts and sessions, and uploads (tus).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Services } from '../../services/index.js';
import { accountRoutes } from './accounts.routes.js';
import { hostRoutes } from './hosts.routes.js';
import { imageStoreRoutes } from './image-stores.routes.js';
import { operationRoutes } from './operations.routes.js';
import { tokenRoutes } from './tokens.routes.js';
import { uploadRoutes } from './uploads.routes.js';

export function coreRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    await app.register(operationRoutes(s));
    await app.register(imageStoreRoutes(s));
    await app.register(tokenRoutes(s));
    await app.register(hostRoutes(s));
    await app.register(accountRoutes(s));
    await app.register(uploadRoutes(s));
  };
}
