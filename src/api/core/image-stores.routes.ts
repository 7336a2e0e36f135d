// Labforge.Core/imageStores (admins only): verify and garbage-collect the
// chunk stores (long-running), and their usage and cost.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { Operation, Usage } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { STORE_GC, STORE_VERIFY } from '../../services/store.service.js';
import { lroHeaders } from '../arm/arm.js';
import { renderOperation } from './render.js';

const ADMIN = { apiFamily: 'labforge', roles: ['admin'] } as const;
const SubParams = Type.Object({ sub: Type.String() });
const StoreQuery = Type.Object({ 'api-version': Type.Optional(Type.String()), region: Type.Optional(Type.String()) });

export function imageStoreRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    for (const [action, kind, summary] of [
      ['verify', STORE_VERIFY, 'Re-hash every chunk, quarantine corrupt ones and repair them from another region (long-running)'],
      ['gc', STORE_GC, 'Free chunks no version uses any more, after a grace period (long-running)'],
    ] as const) {
      app.post(
        `/subscriptions/:sub/providers/Labforge.Core/imageStores/${action}`,
        { config: ADMIN, schema: { tags: ['imageStores'], summary, params: SubParams, querystring: StoreQuery, response: { 202: Operation } } },
        async (req, reply) => {
          await s.groups.requireSubscription(req.params.sub);
          const op = await s.imageStoreMaintenance.start(kind, req.principal, req.params.sub, req.query.region);
          lroHeaders(reply, req, s.config.publicUrl, op);
          reply.status(202);
          return renderOperation(op);
        },
      );
    }
    app.get(
      '/subscriptions/:sub/providers/Labforge.Core/imageStores/usage',
      {
        config: ADMIN,
        schema: {
          tags: ['imageStores'],
          summary: 'Stored bytes and monthly cost per region and per version',
          params: SubParams,
          querystring: StoreQuery,
          response: { 200: Usage },
        },
      },
      async (req) => {
        await s.groups.requireSubscription(req.params.sub);
        return s.imageStoreMaintenance.usage(req.query.region);
      },
    );
  };
}
