// Microsoft.Compute: galleries, image definitions, image versions, VMs and their consoles.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Services } from '../../services/index.js';
import { consoleRoutes } from './consoles.routes.js';
import { galleryRoutes } from './galleries.routes.js';
import { imageRoutes } from './images.routes.js';
import { versionRoutes } from './versions.routes.js';
import { vmRoutes } from './vms.routes.js';

export function computeRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    await app.register(galleryRoutes(s));
    await app.register(imageRoutes(s));
    await app.register(versionRoutes(s));
    await app.register(vmRoutes(s));
    await app.register(consoleRoutes(s));
  };
}
