// Resumable uploads of disk files over the tus protocol at /uploads.
// Authentication and roles are checked by the app's hooks like any route;
// the tus server handles the protocol on the raw request.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Server } from '@tus/server';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { forbidden, notFound } from '../../errors.js';
import type { Principal } from '../../services/common.js';
import type { Services } from '../../services/index.js';

const UPLOADERS = ['admin', 'creator'] as const;

export function uploadRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const callers = new WeakMap<IncomingMessage, Principal>();
    const nodeReq = (req: unknown) => (req as { runtime?: { node?: { req: IncomingMessage } } }).runtime?.node?.req;
    const tus = new Server({
      path: '/uploads',
      datastore: s.uploads.datastore,
      relativeLocation: true,
      maxSize: s.config.images.maxDiskBytes,
      namingFunction: () => randomBytes(16).toString('hex'),
      onUploadCreate: async (req, upload) => {
        const p = callers.get(nodeReq(req) as IncomingMessage);
        return { metadata: { ...upload.metadata, owner: p?.subject ?? '' } };
      },
    });

    // tus reads the body itself.
    app.addContentTypeParser('application/offset+octet-stream', (_req, _payload, done) => done(null));

    const handle = async (req: FastifyRequest, reply: FastifyReply) => {
      const id = (req.params as { id?: string }).id;
      if (id && req.method !== 'OPTIONS') {
        const u = await s.uploads.get(id);
        if (!u) throw notFound('ResourceNotFound', `Upload '${id}' was not found; it may have been imported already, or never started.`);
        if (req.principal.role !== 'admin' && u.owner !== req.principal.subject) throw forbidden(`Upload '${id}' belongs to someone else.`);
      }
      callers.set(req.raw, req.principal);
      reply.hijack();
      await tus.handle(req.raw, reply.raw);
    };

    const methods = ['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS'] as const;
    app.route({ method: [...methods], url: '/uploads', config: { roles: UPLOADERS }, schema: { hide: true }, handler: handle });
    app.route({ method: [...methods], url: '/uploads/:id', config: { roles: UPLOADERS }, schema: { hide: true }, handler: handle });
  };
}
