// ARM conventions shared by every route: api-version, the error envelope,
// systemData, ETags, paging with nextLink, and long-running-operation headers.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { badRequest } from '../../errors.js';
import type { Operation } from '../../operations/operation.store.js';
import type { Preconditions, ResourceMeta } from '../../services/common.js';

export const API_VERSIONS = {
  compute: ['2025-12-03', '2025-03-03', '2024-03-03', '2023-07-03', '2022-08-03', '2022-03-03', '2022-01-03', '2021-10-01', '2021-07-01'],
  resources: ['2025-04-01', '2024-11-01', '2024-07-01', '2024-03-01', '2023-07-01', '2022-09-01', '2021-04-01', '2020-06-01', '2019-10-01'],
  subscriptions: ['2022-12-01', '2021-01-01', '2020-01-01', '2016-06-01'],
  labforge: ['2026-11-01'],
  labServices: ['2022-08-01', '2023-06-07', '2021-11-15-preview', '2021-10-01-preview'],
  virtualMachines: [
    '2026-04-01',
    '2026-03-01',
    '2025-11-01',
    '2025-04-01',
    '2024-11-01',
    '2024-07-01',
    '2024-03-01',
    '2023-09-01',
    '2023-07-01',
    '2023-03-01',
    '2022-11-01',
  ],
} as const;
export type ApiFamily = keyof typeof API_VERSIONS;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which api-version list the route accepts; routes without one take no api-version. */
    apiFamily?: ApiFamily;
    /** Roles allowed to call the route; absent means any authenticated caller. */
    roles?: readonly ('admin' | 'creator' | 'user')[];
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

export function renderOperation(op: Operation) {
  return {
    id: `/subscriptions/${op.subscriptionId}/providers/Labforge.Core/operations/${op.id}`,
    name: op.id,
    status: op.state,
    startTime: op.startedAt ?? op.createdAt,
    ...(op.endedAt ? { endTime: op.endedAt } : {}),
    percentComplete: op.percentComplete,
    ...(op.error ? { error: op.error } : {}),
    properties: {
      kind: op.kind,
      resourceId: op.targetId,
      statusMessage: op.statusMessage,
      createdBy: op.createdBy,
      createdAt: op.createdAt,
      attempts: op.attempts,
      cancelRequested: op.cancelRequested,
      ...(op.checkpoint.result !== undefined ? { result: op.checkpoint.result } : {}),
    },
  };
}
