// Microsoft.LabServices (api-version 2022-08-01 shapes): one route file per
// resource family and one render.ts for their JSON.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Services } from '../../services/index.js';
import { labPlanRoutes } from './lab-plans.routes.js';
import { labUserRoutes } from './lab-users.routes.js';
import { labVmRoutes } from './lab-vms.routes.js';
import { labRoutes } from './labs.routes.js';
import { scheduleRoutes } from './schedules.routes.js';

export function labServicesRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    await app.register(labPlanRoutes(s));
    await app.register(labRoutes(s));
    await app.register(labVmRoutes(s));
    await app.register(labUserRoutes(s));
    await app.register(scheduleRoutes(s));
  };
}
