// Builds the HTTP API: authentication, api-version checks, the ARM error
// envelope, the OpenAPI document and every route family.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyError, type FastifyHttpOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { INSTALL_ROOT } from '../config/config.js';
import { ArmError } from '../contract/arm.js';
import { forbidden, LabforgeError, unauthorized } from '../errors.js';
import type { Principal } from '../services/common.js';
import type { Services } from '../services/index.js';
import { checkApiVersion } from './arm/arm.js';
import { computeRoutes } from './compute/index.js';
import { coreRoutes } from './core/index.js';
import { envelope, sendError } from './errors.js';
import { labServicesRoutes } from './labservices/index.js';
import { resourceRoutes } from './resources/index.js';
import { registerResponseCache } from './response-cache.js';
import { VerifiedTokens } from './verified-tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

export type App = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  import('fastify').FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface AppOptions {
  https?: { key: string | Buffer; cert: string | Buffer };
  logger?: FastifyServerOptions['logger'];
}

const API_PATH = /^\/(subscriptions|providers|uploads|consoles|openapi\.json|healthz)(\/|\?|$)/i;

export async function buildApp(services: Services, opts: AppOptions = {}): Promise<App> {
  // With `https` Fastify makes an https.Server; the routes see it through node:http's types (the same request and reply).
  const options: FastifyHttpOptions<Server> = {
    logger: opts.logger ?? false,
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true },
    bodyLimit: 4 * 1024 * 1024,
    exposeHeadRoutes: false,
    genReqId: () => randomUUID(),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
  };
  const app: App = Fastify(opts.https ? Object.assign(options, { https: opts.https }) : options).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'labforge API',
        version: '0.1.0',
        description:
          'Azure-Resource-Manager-shaped API of labforge: resource groups, galleries, image definitions and versions, VMs, Lab Services (lab plans, labs, their VMs, users and schedules), operations, tokens, accounts and hosts.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  // An empty JSON body (DELETE and action calls from some clients) means "no body", not an error.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      const e = new LabforgeError(
        400,
        'InvalidRequestContent',
        `The request body is not valid JSON: ${(err as Error).message}. Check quotes, commas and brackets.`,
      );
      done(e as unknown as Error, undefined);
    }
  });

  app.decorateRequest('principal', undefined as unknown as Principal);

  const verified = new VerifiedTokens();
  app.decorateRequest('changeMark', undefined);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-ms-request-id', req.id);
    const clientId = req.headers['x-ms-client-request-id'];
    if (typeof clientId === 'string') reply.header('x-ms-client-request-id', clientId);
    const cfg = req.routeOptions.config;
    if (cfg?.public) return;
    // A page of the web portal opened by its address (client-side route): the 404 handler serves the app.
    if (req.is404 && req.method === 'GET' && !API_PATH.test(req.url) && /text\/html/.test(req.headers.accept ?? '')) return;
    const query = req.query as Record<string, unknown>;
    if (query && ('access_token' in query || 'token' in query)) {
      throw unauthorized(
        'Tokens are never accepted in the URL (URLs end up in logs and browser history). Send it in the header: Authorization: Bearer <token>.',
      );
    }
    const auth = req.headers.authorization;
    if (!auth) {
      reply.header('WWW-Authenticate', 'Bearer realm="labforge"');
      throw new LabforgeError(
        401,
        'AuthenticationFailed',
        'This request has no token. Send Authorization: Bearer <token>; an admin can create tokens with `labforge token create`.',
      );
    }
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    const token = m?.[1];
    // Taken before the token is verified: the answer cache and the verified tokens hold only while it stays the same.
    const mark = services.store.changeMark();
    req.changeMark = mark;
    let principal = token ? verified.get(token, mark) : undefined;
    if (!principal && token) {
      const valid = await services.tokens.verifyUntil(token);
      principal = valid?.principal;
      if (valid) verified.set(token, mark, valid.principal, valid.expiresAt);
    }
    if (!principal) {
      reply.header('WWW-Authenticate', 'Bearer realm="labforge", error="invalid_token"');
      throw new LabforgeError(
        401,
        'InvalidAuthenticationToken',
        'The token is not valid: it is malformed, unknown, expired or revoked. Ask an admin for a new one (`labforge token create`).',
      );
    }
    req.principal = principal;
  });

  // Not async: it awaits nothing, and a plain hook costs less on every request.
  app.addHook('preHandler', (req, _reply, done) => {
    const cfg = req.routeOptions.config;
    if (cfg?.roles && !cfg.roles.includes(req.principal.role)) {
      return done(
        forbidden(
          `The client '${req.principal.subject}' with role '${req.principal.role}' does not have authorization to perform ${req.method} on this resource; it needs role ${cfg.roles.map((r) => `'${r}'`).join(' or ')}. Nothing was changed.`,
        ),
      );
    }
    try {
      if (cfg?.apiFamily) checkApiVersion(cfg.apiFamily, (req.query as Record<string, unknown>)['api-version']);
    } catch (err) {
      return done(err as Error);
    }
    done();
  });

  registerResponseCache(app);

  const metadata = services.config.database.kind === 'sqlite' ? services.config.database.file : 'the PostgreSQL database';
  app.setErrorHandler((err, req, reply) => sendError(err as FastifyError, req, reply, metadata));

  // The web portal (built into dist/web): its files need no token; any other page path gets index.html (client-side routes).
  const webRoot = join(INSTALL_ROOT, 'dist', 'web');
  const indexHtml = existsSync(join(webRoot, 'index.html')) ? readFileSync(join(webRoot, 'index.html'), 'utf8') : undefined;
  if (indexHtml) {
    await app.register(async (web) => {
      web.addHook('onRoute', (r) => {
        r.config = { ...(r.config ?? {}), public: true };
        r.schema = { ...(r.schema ?? {}), hide: true };
      });
      await web.register(fastifyStatic, { root: webRoot, prefix: '/', wildcard: false, index: false });
    });
    app.get('/', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => reply.type('text/html; charset=utf-8').send(indexHtml));
  }

  app.setNotFoundHandler((req, reply) => {
    if (indexHtml && req.method === 'GET' && !API_PATH.test(req.url) && /text\/html/.test(req.headers.accept ?? '')) {
      return reply.type('text/html; charset=utf-8').send(indexHtml);
    }
    reply
      .status(404)
      .send(
        envelope(
          'InvalidResourceType',
          `labforge has no resource or action at ${req.method} ${req.url.split('?')[0]}. See GET /openapi.json for what this server implements, and docs/API.md for the differences from Azure.`,
        ),
      );
  });

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ok' }));

  // Every route declares its answers from the contract (src/contract); the error envelope is the same for all of them.
  app.addHook('onRoute', (route) => {
    const response = route.schema?.response as Record<string, unknown> | undefined;
    if (response) route.schema = { ...route.schema, response: { ...response, '4xx': ArmError, '5xx': ArmError } };
  });
  await app.register(resourceRoutes(services));
  await app.register(computeRoutes(services));
  await app.register(labServicesRoutes(services));
  await app.register(coreRoutes(services));
  return app;
}
