// Answers of reads that depend only on the database and the URL (galleries,
// image definitions, image versions), kept while the database has not changed.
// The authentication hook takes the store's change mark when a request
// arrives (req.changeMark); an answer is stored under the mark of the request
// that computed it, and reused by a later request with the same mark, that is
// while nothing was written through this process and no other connection
// committed. A write while the handler runs makes the stored mark old at once,
// so nothing stale is served; authentication and the role check run for every
// request. Where the store has no change mark (PostgreSQL) nothing is kept.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The answer of this GET depends only on the database and the URL: it may be reused until the database changes. */
    cacheable?: boolean;
  }
  interface FastifyRequest {
    /** The store's change mark when the request arrived (undefined: the store has none, or the route needs no token). */
    changeMark?: string;
    /** The change mark the handler's answer is stored under. */
    cacheMark?: string;
  }
}

interface Entry {
  mark: string;
  payload: string;
  etag: string | undefined;
}

export interface ResponseCacheOptions {
  maxEntries?: number;
  maxBytes?: number;
}

/**
 * Adds the cache to the routes registered after it whose config says `cacheable`: a preHandler that answers from
 * the cache (it runs after the app's own preHandler, which checks the role and the api-version) and an onSend that
 * stores the answer. Other routes get no hook at all.
 */
export function registerResponseCache(app: FastifyInstance, opts: ResponseCacheOptions = {}): void {
  const maxEntries = opts.maxEntries ?? 512;
  const maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
  const entries = new Map<string, Entry>();
  let bytes = 0;
  const keyOf = (req: FastifyRequest) => `${req.protocol}://${req.host}${req.url}`;
  const drop = (key: string, e: Entry) => {
    entries.delete(key);
    bytes -= e.payload.length;
  };

  // Plain hooks, not async ones: they await nothing, and run on every request of the routes they serve.
  const answer = (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const mark = req.changeMark;
    if (mark === undefined) return done();
    const key = keyOf(req);
    const hit = entries.get(key);
    if (hit && hit.mark === mark) {
      if (hit.etag) reply.header('ETag', hit.etag);
      reply.type('application/json; charset=utf-8').send(hit.payload);
      return;
    }
    if (hit) drop(key, hit);
    req.cacheMark = mark;
    done();
  };

  const store = (req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void) => {
    if (req.cacheMark === undefined || reply.statusCode !== 200 || typeof payload !== 'string') return done(null, payload);
    const key = keyOf(req);
    const old = entries.get(key);
    if (old) drop(key, old);
    const etag = reply.getHeader('etag');
    entries.set(key, { mark: req.cacheMark, payload, etag: typeof etag === 'string' ? etag : undefined });
    bytes += payload.length;
    // Oldest first: a Map keeps insertion order.
    for (const [k, e] of entries) {
      if (entries.size <= maxEntries && bytes <= maxBytes) break;
      drop(k, e);
    }
    done(null, payload);
  };

  app.decorateRequest('cacheMark', undefined);
  const hooks = <T>(existing: T | T[] | undefined, added: T): T[] => [
    ...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]),
    added,
  ];
  app.addHook('onRoute', (route) => {
    if (!route.config?.cacheable) return;
    if (route.method !== 'GET') throw new Error(`Only GET answers can be kept: ${route.method} ${route.url} is marked cacheable`);
    route.preHandler = hooks(route.preHandler, answer);
    route.onSend = hooks(route.onSend, store);
  });
}
