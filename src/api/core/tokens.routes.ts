// Labforge.Core/tokens (admins only) and whoami (any token).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { CreatedToken, Page, ROLES, Token, TokenInput, WhoAmI } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { renderToken } from './render.js';

const ADMIN = { apiFamily: 'labforge', roles: ['admin'] } as const;

export function tokenRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/providers/Labforge.Core/tokens',
      { config: ADMIN, schema: { tags: ['tokens'], summary: 'List API tokens', response: { 200: Page(Token) } } },
      async () => ({ value: (await s.tokens.list()).map(renderToken) }),
    );
    app.post(
      '/providers/Labforge.Core/tokens',
      {
        config: ADMIN,
        schema: {
          tags: ['tokens'],
          summary: 'Create an API token; the secret is shown only in this response',
          body: TokenInput,
          response: { 201: CreatedToken },
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
      { config: ADMIN, schema: { tags: ['tokens'], summary: 'Revoke a token', params: Type.Object({ id: Type.String() }), response: { 200: Token } } },
      async (req) => renderToken(await s.tokens.revoke(req.params.id)),
    );
    app.get(
      '/providers/Labforge.Core/whoami',
      { config: { roles: ROLES }, schema: { tags: ['tokens'], summary: 'Who this token belongs to', response: { 200: WhoAmI } } },
      async (req) => ({ subject: req.principal.subject, role: req.principal.role, tokenId: req.principal.tokenId }),
    );
  };
}
