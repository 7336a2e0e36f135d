// The `subscriptions` and `resource_groups` tables: the containers every
// resource lives in. Every query on the two tables is here, with the mapping
// of rows to `Subscription` and `ResourceGroup`. The resource group service is
// the only writer.
import type { Kysely } from 'kysely';
import type { Database, Db, ResourceGroupTable, SubscriptionTable } from '../db/schema.js';
import type { Principal } from '../lib/principal.js';
import { creationStamp, forUpdate, keyOf, modificationStamp } from './common.js';

export interface Subscription {
  id: string;
  displayName: string;
  state: string;
}

export interface ResourceGroup {
  subscriptionId: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  etag: string;
  createdAt: string;
  createdBy: string;
  createdByType: string;
  modifiedAt: string;
  modifiedBy: string;
  modifiedByType: string;
}

const toSubscription = (r: SubscriptionTable): Subscription => ({ id: r.id, displayName: r.display_name, state: r.state });

const toGroup = (r: ResourceGroupTable): ResourceGroup => ({
  subscriptionId: r.subscription_id,
  name: r.name,
  location: r.location,
  tags: JSON.parse(r.tags),
  etag: r.etag,
  createdAt: r.created_at,
  createdBy: r.created_by,
  createdByType: r.created_by_type,
  modifiedAt: r.modified_at,
  modifiedBy: r.modified_by,
  modifiedByType: r.modified_by_type,
});

export class ResourceGroupRepository {
  constructor(readonly db: Kysely<Database>) {}

  // ---- subscriptions ----

  /** Subscriptions in the order they were made. */
  async subscriptions(): Promise<Subscription[]> {
    return (await this.db.selectFrom('subscriptions').selectAll().orderBy('created_at').execute()).map(toSubscription);
  }

  async firstSubscription(): Promise<Subscription | undefined> {
    const r = await this.db.selectFrom('subscriptions').selectAll().orderBy('created_at').executeTakeFirst();
    return r ? toSubscription(r) : undefined;
  }

  /** A subscription by id (ids are kept in lower case). */
  async subscription(id: string, db: Db = this.db): Promise<Subscription | undefined> {
    const r = await db.selectFrom('subscriptions').selectAll().where('id', '=', id.toLowerCase()).executeTakeFirst();
    return r ? toSubscription(r) : undefined;
  }

  async insertSubscription(s: Subscription & { createdAt: string }): Promise<Subscription> {
    const row: SubscriptionTable = { id: s.id, display_name: s.displayName, state: s.state, created_at: s.createdAt };
    await this.db.insertInto('subscriptions').values(row).execute();
    return toSubscription(row);
  }

  // ---- resource groups ----

  /** A group by subscription and name (names match case-insensitively); `lock` holds the row to the transaction's end. */
  async group(db: Db, sub: string, name: string, lock = false): Promise<ResourceGroup | undefined> {
    const q = db.selectFrom('resource_groups').selectAll().where('subscription_id', '=', sub.toLowerCase()).where('name_key', '=', keyOf(name));
    const r = await (lock ? forUpdate(db, q) : q).executeTakeFirst();
    return r ? toGroup(r) : undefined;
  }

  /** Groups of a subscription by name, for paging (`after` is the last name's key). */
  async list(sub: string, after: string | undefined, limit: number): Promise<ResourceGroup[]> {
    let q = this.db.selectFrom('resource_groups').selectAll().where('subscription_id', '=', sub.toLowerCase());
    if (after) q = q.where('name_key', '>', after);
    return (await q.orderBy('name_key').limit(limit).execute()).map(toGroup);
  }

  async insert(db: Db, by: Principal, g: { subscriptionId: string; name: string; location: string; tags: Record<string, string> }): Promise<ResourceGroup> {
    const row: ResourceGroupTable = {
      subscription_id: g.subscriptionId.toLowerCase(),
      name: g.name,
      name_key: keyOf(g.name),
      location: g.location,
      tags: JSON.stringify(g.tags),
      ...creationStamp(by),
    };
    await db.insertInto('resource_groups').values(row).execute();
    return toGroup(row);
  }

  /** A change of tags by a person, with a new ETag; returns the group as it is now. */
  async modifyTags(db: Db, current: ResourceGroup, by: Principal, tags: Record<string, string>): Promise<ResourceGroup> {
    const stamp = modificationStamp(by);
    await db
      .updateTable('resource_groups')
      .set({ tags: JSON.stringify(tags), ...stamp })
      .where('subscription_id', '=', current.subscriptionId.toLowerCase())
      .where('name_key', '=', keyOf(current.name))
      .execute();
    return {
      ...current,
      tags: JSON.parse(JSON.stringify(tags)),
      etag: stamp.etag,
      modifiedAt: stamp.modified_at,
      modifiedBy: stamp.modified_by,
      modifiedByType: stamp.modified_by_type,
    };
  }

  async delete(db: Db, sub: string, name: string): Promise<void> {
    await db.deleteFrom('resource_groups').where('subscription_id', '=', sub.toLowerCase()).where('name_key', '=', keyOf(name)).execute();
  }
}
