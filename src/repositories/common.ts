// What every repository shares: the columns of an ARM-shaped resource row and
// their domain names, creation and modification stamps, row locks, JSON columns.
import { randomUUID } from 'node:crypto';
import { PostgresAdapter } from 'kysely';
import type { ResourceColumns } from '../db/schema.js';
import type { Principal } from '../lib/principal.js';
import { nowIso } from '../lib/time.js';

/** Metadata every resource carries, in plain names. */
export interface ResourceMeta {
  key: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  etag: string;
  provisioningState: string;
  createdAt: string;
  createdBy: string;
  createdByType: string;
  modifiedAt: string;
  modifiedBy: string;
  modifiedByType: string;
}

/** Reads the columns every resource row shares. */
export function resourceMeta(r: ResourceColumns): ResourceMeta {
  return {
    key: r.id,
    subscriptionId: r.subscription_id,
    resourceGroup: r.resource_group,
    name: r.name,
    location: r.location,
    tags: JSON.parse(r.tags),
    etag: r.etag,
    provisioningState: r.provisioning_state,
    createdAt: r.created_at,
    createdBy: r.created_by,
    createdByType: r.created_by_type,
    modifiedAt: r.modified_at,
    modifiedBy: r.modified_by,
    modifiedByType: r.modified_by_type,
  };
}

/** The columns every resource row shares, from a record's metadata (the inverse of `resourceMeta`). */
export function resourceColumns(m: ResourceMeta): ResourceColumns {
  return {
    id: m.key,
    subscription_id: m.subscriptionId,
    resource_group: m.resourceGroup,
    resource_group_key: keyOf(m.resourceGroup),
    name: m.name,
    name_key: keyOf(m.name),
    location: m.location,
    tags: JSON.stringify(m.tags),
    etag: m.etag,
    provisioning_state: m.provisioningState,
    created_at: m.createdAt,
    created_by: m.createdBy,
    created_by_type: m.createdByType,
    modified_at: m.modifiedAt,
    modified_by: m.modifiedBy,
    modified_by_type: m.modifiedByType,
  };
}

export const newEtag = () => `"${randomUUID()}"`;
/** Names match case-insensitively: rows keep a lower-case key beside the name. */
export const keyOf = (name: string) => name.toLowerCase();
const principalType = (p: Principal) => (p.tokenId === 'system' ? 'Application' : 'User');

export function creationStamp(p: Principal) {
  const at = nowIso();
  const type = principalType(p);
  return {
    etag: newEtag(),
    created_at: at,
    created_by: p.subject,
    created_by_type: type,
    modified_at: at,
    modified_by: p.subject,
    modified_by_type: type,
  };
}

export function modificationStamp(p: Principal) {
  return { etag: newEtag(), modified_at: nowIso(), modified_by: p.subject, modified_by_type: principalType(p) };
}

export const parseJson = <T>(text: string | null | undefined, fallback: T): T => (text ? (JSON.parse(text) as T) : fallback);

/**
 * Locks the selected row until the transaction ends (PostgreSQL), so a
 * concurrent writer waits and then sees the new ETag. SQLite runs one write
 * transaction at a time, so it needs no lock.
 */
export function forUpdate<Q extends { forUpdate(): Q }>(db: { getExecutor(): { adapter: unknown } }, q: Q): Q {
  return db.getExecutor().adapter instanceof PostgresAdapter ? q.forUpdate() : q;
}
