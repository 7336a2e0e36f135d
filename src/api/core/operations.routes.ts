// Labforge.Core/operations: the status of long-running operations, recent
// operations and cancelling one (their starter and admins only).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { Operation as OperationWire, Page, ROLES } from '../../contract/index.js';
import { forbidden, notFound } from '../../errors.js';
import type { Operation, OperationState } from '../../operations/operation.store.js';
import type { Principal } from '../../services/common.js';
import type { Services } from '../../services/index.js';
import { baseUrl } from '../arm/arm.js';
import { renderOperation } from './render.js';

const OpParams = Type.Object({ sub: Type.String(), id: Type.String() });
const ALL = { apiFamily: 'labforge', roles: ROLES } as const;

export function operationRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    /** An operation of the subscription, if the caller started it or is an admin. */
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
      { config: ALL, schema: { tags: ['operations'], summary: 'Status of a long-running operation', params: OpParams, response: { 200: OperationWire } } },
      async (req, reply) => {
        const op = await visible(req.principal, req.params.sub, req.params.id);
        if (op.state === 'InProgress') reply.header('Retry-After', '1');
        return renderOperation(op);
      },
    );

    app.get(
      '/subscriptions/:sub/providers/Labforge.Core/operations',
      {
        config: ALL,
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
          response: { 200: Page(OperationWire) },
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
        const body: { value: OperationWire[]; nextLink?: string } = { value: items.map(renderOperation) };
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
        config: ALL,
        schema: {
          tags: ['operations'],
          summary: 'Ask a running operation to stop and undo its work',
          params: OpParams,
          response: { 200: OperationWire, 202: OperationWire },
        },
      },
      async (req, reply) => {
        const op = await visible(req.principal, req.params.sub, req.params.id);
        const after = op.state === 'InProgress' ? await s.operations.requestCancel(op.id) : op;
        reply.status(op.state === 'InProgress' ? 202 : 200);
        return renderOperation(after as Operation);
      },
    );
  };
}
