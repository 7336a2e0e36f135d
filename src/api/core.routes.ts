// labforge's own resources (provider Labforge.Core): operations and tokens.
import type { FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import { forbidden, notFound } from '../errors.js';
import type { Operation, OperationState } from '../operations/operation.store.js';
import type { Principal } from '../services/common.js';
import type { Services } from '../services/index.js';
import { STORE_GC, STORE_VERIFY } from '../services/store.service.js';
import type { TokenInfo } from '../services/token.service.js';
import type { App } from './app.js';
import { baseUrl, lroHeaders, renderOperation } from './arm/arm.js';

const OpParams = Type.Object({ sub: Type.String(), id: Type.String() });
const ALL = ['admin', 'creator', 'user'] as const;

export function renderToken(t: TokenInfo) {
  return {
    id: `/providers/Labforge.Core/tokens/${t.id}`,
    name: t.id,
    type: 'Labforge.Core/tokens',
    properties: {
      displayName: t.name,
      subject: t.subject,
      role: t.role,
      createdAt: t.createdAt,
      createdBy: t.createdBy,
      expiresAt: t.expiresAt,
      lastUsedAt: t.lastUsedAt,
      revokedAt: t.revokedAt,
      state: t.revokedAt ? 'Revoked' : t.expiresAt && t.expiresAt < new Date().toISOString() ? 'Expired' : 'Active',
    },
  };
}

export function coreRoutes(s: Services): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify as unknown as App;

    const visible = async (p: Principal, sub: string, id: string): Promise<Operation> => {
      const op = await s.operations.get(id);
      if (!op || op.subscriptionId !== sub.toLowerCase()) {
        throw notFound(
          'ResourceNotFound',
          `Operation '${id}' was not found in subscription '${sub}'. Operation ids come from the Azure-AsyncOperation header of the request that started it.`,
        );
      }
      if (p.role !== 'admin' && op.createdBy !== p.subject)
        throw forbidden(`Operation '${id}' was started by someone else; only its starter and admins may see it.`);
      return op;
    };

    app.get(
      '/subscriptions/:sub/providers/Labforge.Core/operations/:id',
      { config: { apiFamily: 'labforge', roles: ALL }, schema: { tags: ['operations'], summary: 'Status of a long-running operation', params: OpParams } },
      async (req, reply) => {
        const op = await visible(req.principal, req.params.sub, req.params.id);
        if (op.state === 'InProgress') reply.header('Retry-After', '1');
        return renderOperation(op);
      },
    );

    app.get(
      '/subscriptions/:sub/providers/Labforge.Core/operations',
      {
        config: { apiFamily: 'labforge', roles: ALL },
        schema: {
          tags: ['operations'],
          summary: 'Recent operations, newest first (admins see all, others their own)',
          params: Type.Object({ sub: Type.String() }),
          querystring: Type.Object({
            'api-version': Type.Optional(Type.String()),
            state: Type.Optional(Type.String()),
            $top: Type.Optional(Type.String()),
            $skipToken: Type.Optional(Type.String()),
          }),
        },
      },
      async (req) => {
        await s.groups.requireSubscription(req.params.sub);
        const top = req.query.$top ? Math.min(1000, Math.max(1, Number(req.query.$top) || 50)) : 50;
        const before = req.query.$skipToken ? Buffer.from(req.query.$skipToken, 'base64url').toString('utf8') : undefined;
        const rows = await s.operations.list(
          {
            subscriptionId: req.params.sub.toLowerCase(),
            createdBy: req.principal.role === 'admin' ? undefined : req.principal.subject,
            state: req.query.state as OperationState | undefined,
          },
          before,
          top + 1,
        );
        const more = rows.length > top;
        const items = rows.slice(0, top);
        const body: { value: unknown[]; nextLink?: string } = { value: items.map(renderOperation) };
        if (more) {
          const url = new URL(req.url, baseUrl(req, s.config.publicUrl));
          url.searchParams.set('$skipToken', Buffer.from((items[items.length - 1] as Operation).createdAt).toString('base64url'));
          body.nextLink = `${baseUrl(req, s.config.publicUrl)}${url.pathname}${url.search}`;
        }
        return body;
      },
    );

    app.post(
      '/subscriptions/:sub/providers/Labforge.Core/operations/:id/cancel',
      {
        config: { apiFamily: 'labforge', roles: ALL },
        schema: { tags: ['operations'], summary: 'Ask a running operation to stop and undo its work', params: OpParams },
      },
      async (req, reply) => {
        const op = await visible(req.principal, req.params.sub, req.params.id);
        const after = op.state === 'InProgress' ? await s.operations.requestCancel(op.id) : op;
        reply.status(op.state === 'InProgress' ? 202 : 200);
        return renderOperation(after as Operation);
      },
    );

    // ---- image stores (admin only) ----
    const StoreQuery = Type.Object({ 'api-version': Type.Optional(Type.String()), region: Type.Optional(Type.String()) });
    for (const [action, kind, summary] of [
      ['verify', STORE_VERIFY, 'Re-hash every chunk, quarantine corrupt ones and repair them from another region (long-running)'],
      ['gc', STORE_GC, 'Free chunks no version uses any more, after a grace period (long-running)'],
    ] as const) {
      app.post(
        `/subscriptions/:sub/providers/Labforge.Core/imageStores/${action}`,
        {
          config: { apiFamily: 'labforge', roles: ['admin'] },
          schema: { tags: ['imageStores'], summary, params: Type.Object({ sub: Type.String() }), querystring: StoreQuery },
        },
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
        config: { apiFamily: 'labforge', roles: ['admin'] },
        schema: {
          tags: ['imageStores'],
          summary: 'Stored bytes and monthly cost per region and per version',
          params: Type.Object({ sub: Type.String() }),
          querystring: StoreQuery,
        },
      },
      async (req) => {
        await s.groups.requireSubscription(req.params.sub);
        return s.imageStoreMaintenance.usage(req.query.region);
      },
    );

    // ---- tokens (admin only) ----
    app.get(
      '/providers/Labforge.Core/tokens',
      { config: { apiFamily: 'labforge', roles: ['admin'] }, schema: { tags: ['tokens'], summary: 'List API tokens' } },
      async () => ({
        value: (await s.tokens.list()).map(renderToken),
      }),
    );

    app.post(
      '/providers/Labforge.Core/tokens',
      {
        config: { apiFamily: 'labforge', roles: ['admin'] },
        schema: {
          tags: ['tokens'],
          summary: 'Create an API token; the secret is shown only in this response',
          body: Type.Object({
            name: Type.String({ minLength: 1, maxLength: 100 }),
            role: Type.String(),
            subject: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            expiresInDays: Type.Optional(Type.Integer()),
          }),
        },
      },
      async (req, reply) => {
        const { info, token } = await s.tokens.create(req.principal, req.body);
        reply.status(201);
        return { ...renderToken(info), token };
      },
    );

    app.delete(
      '/providers/Labforge.Core/tokens/:id',
      {
        config: { apiFamily: 'labforge', roles: ['admin'] },
        schema: { tags: ['tokens'], summary: 'Revoke a token', params: Type.Object({ id: Type.String() }) },
      },
      async (req) => renderToken(await s.tokens.revoke(req.params.id)),
    );

    app.get('/providers/Labforge.Core/whoami', { config: { roles: ALL }, schema: { tags: ['tokens'], summary: 'Who this token belongs to' } }, async (req) => ({
      subject: req.principal.subject,
      role: req.principal.role,
      tokenId: req.principal.tokenId,
    }));
  };
}
