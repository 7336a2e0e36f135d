// ARM conventions shared by every route: api-version, systemData, ETags,
// paging with nextLink, long-running-operation headers, and the answers
// without a body (the error envelope is declared for every route in app.ts).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { API_VERSIONS, type ApiFamily } from '../../contract/api-versions.js';
import type { Role } from '../../contract/roles.js';
import { NoBody } from '../../contract/schema.js';
import { badRequest } from '../../errors.js';
import type { Operation } from '../../operations/operation.store.js';
import type { Preconditions, ResourceMeta } from '../../services/common.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which api-version list the route accepts; routes without one take no api-version. */
    apiFamily?: ApiFamily;
    /** Roles allowed to call the route; absent means any authenticated caller. */
    roles?: readonly Role[];
    /** The route needs no token (health, OpenAPI document). */
    public?: boolean;
  }
}

/** Refuses a missing or unknown api-version with the list Azure would give. */
export function checkApiVersion(family: ApiFamily, value: unknown): string {
  const supported = API_VERSIONS[family];
  if (typeof value !== 'string' || value === '') {
    throw badRequest(
      'MissingApiVersionParameter',
      `The api-version query parameter (?api-version=) is required for all requests. The supported api-versions are '${supported.join(', ')}'.`,
    );
  }
  if (!(supported as readonly string[]).includes(value)) {
    throw badRequest('InvalidApiVersionParameter', `The api-version '${value}' is invalid. The supported versions are '${supported.join(', ')}'.`);
  }
  return value;
}

export function systemData(m: Pick<ResourceMeta, 'createdAt' | 'createdBy' | 'createdByType' | 'modifiedAt' | 'modifiedBy' | 'modifiedByType'>) {
  return {
    createdBy: m.createdBy,
    createdByType: m.createdByType,
    createdAt: m.createdAt,
    lastModifiedBy: m.modifiedBy,
    lastModifiedByType: m.modifiedByType,
    lastModifiedAt: m.modifiedAt,
  };
}

export function preconditions(req: FastifyRequest): Preconditions | undefined {
  const ifMatch = req.headers['if-match'];
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifMatch === undefined && ifNoneMatch === undefined) return undefined;
  return { ifMatch: ifMatch as string | undefined, ifNoneMatch: ifNoneMatch as string | undefined };
}

/** The base URL clients reach us at, for nextLink and operation URLs. */
export function baseUrl(req: FastifyRequest, publicUrl?: string): string {
  if (publicUrl) return publicUrl.replace(/\/$/, '');
  return `${req.protocol}://${req.host}`;
}

export interface PageQuery {
  limit: number;
  after: string | undefined;
}

/** Reads `$top` and `$skipToken`; the token is opaque to clients (base64url of the last key). */
export function pageQuery(req: FastifyRequest, defaultSize: number): PageQuery {
  const q = req.query as Record<string, string | undefined>;
  let limit = defaultSize;
  if (q.$top !== undefined) {
    const n = Number(q.$top);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw badRequest('InvalidParameter', `$top must be a whole number from 1 to 1000; got '${q.$top}'.`, '$top');
    limit = n;
  }
  let after: string | undefined;
  if (q.$skipToken !== undefined) {
    after = Buffer.from(q.$skipToken, 'base64url').toString('utf8');
    if (!after) throw badRequest('InvalidParameter', 'The $skipToken is not valid; use the nextLink of the previous page as it is.', '$skipToken');
  }
  return { limit, after };
}

/** Builds `{value, nextLink}`; asks for one row more than the page to know whether another page exists. */
export function page<T, R>(req: FastifyRequest, publicUrl: string | undefined, rows: T[], pq: PageQuery, keyOf: (row: T) => string, render: (row: T) => R) {
  const more = rows.length > pq.limit;
  const items = more ? rows.slice(0, pq.limit) : rows;
  const body: { value: R[]; nextLink?: string } = { value: items.map(render) };
  if (more) {
    const url = new URL(req.url, baseUrl(req, publicUrl));
    url.searchParams.set('$skipToken', Buffer.from(keyOf(items[items.length - 1] as T), 'utf8').toString('base64url'));
    if (pq.limit !== undefined && !url.searchParams.has('$top')) url.searchParams.set('$top', String(pq.limit));
    body.nextLink = `${baseUrl(req, publicUrl)}${url.pathname}${url.search}`;
  }
  return body;
}

export function operationUrl(req: FastifyRequest, publicUrl: string | undefined, op: Pick<Operation, 'id' | 'subscriptionId'>): string {
  return `${baseUrl(req, publicUrl)}/subscriptions/${op.subscriptionId}/providers/Labforge.Core/operations/${op.id}?api-version=${API_VERSIONS.labforge[0]}`;
}

/** Adds the headers Azure SDK pollers follow: Azure-AsyncOperation, Location and Retry-After. */
export function lroHeaders(reply: FastifyReply, req: FastifyRequest, publicUrl: string | undefined, op: Pick<Operation, 'id' | 'subscriptionId'>): void {
  const url = operationUrl(req, publicUrl, op);
  reply.header('Azure-AsyncOperation', url);
  reply.header('Location', url);
  reply.header('Retry-After', '1');
}

/** The answers of a DELETE: 200 when it deleted something, 204 when there was nothing to delete. */
export const DELETED = { 200: NoBody('Deleted.'), 204: NoBody('It did not exist: nothing was deleted.') };

/** The answer of an action that started an operation: follow Azure-AsyncOperation (or Location) to its end. */
export const ACCEPTED = { 202: NoBody('Accepted: an operation started; follow the Azure-AsyncOperation header.') };
