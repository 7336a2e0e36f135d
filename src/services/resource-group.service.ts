// Subscriptions and resource groups: the containers every resource lives in.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, ResourceGroupTable, SubscriptionTable } from '../db/schema.js';
import { conflict, notFound } from '../errors.js';
import { nowIso } from '../lib/time.js';
import {
  checkName,
  checkPreconditions,
  checkTags,
  creationStamp,
  forUpdate,
  keyOf,
  modificationStamp,
  type Preconditions,
  type Principal,
  type RegionCatalog,
} from './common.js';

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

/** Tables that hold resources inside a resource group, with the type name to report. */
const CONTAINED: Array<{ table: 'galleries'; type: string }> = [{ table: 'galleries', type: 'Microsoft.Compute/galleries' }];

export class ResourceGroupService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly regions: RegionCatalog,
  ) {}

  /** Creates the first subscription when the store is new; returns every subscription. */
  async ensureDefaultSubscription(): Promise<Subscription> {
    const existing = await this.db.selectFrom('subscriptions').selectAll().orderBy('created_at').executeTakeFirst();
    if (existing) return toSubscription(existing);
    const row = { id: randomUUID(), display_name: 'Default', state: 'Enabled', created_at: nowIso() };
    await this.db.insertInto('subscriptions').values(row).execute();
    return toSubscription(row);
  }

  async listSubscriptions(): Promise<Subscription[]> {
    return (await this.db.selectFrom('subscriptions').selectAll().orderBy('created_at').execute()).map(toSubscription);
  }

  async requireSubscription(id: string, db: Kysely<Database> = this.db): Promise<Subscription> {
    const row = await db.selectFrom('subscriptions').selectAll().where('id', '=', id.toLowerCase()).executeTakeFirst();
    if (!row) {
      throw notFound('SubscriptionNotFound', `The subscription '${id}' could not be found. List the subscriptions your token may use with GET /subscriptions.`);
    }
    return toSubscription(row);
  }

  /** Pass `db` when inside a transaction: SQLite has one connection, and a query outside the transaction would wait for it forever. */
  async get(subscriptionId: string, name: string, db: Kysely<Database> = this.db): Promise<ResourceGroup> {
    await this.requireSubscription(subscriptionId, db);
    const row = await db
      .selectFrom('resource_groups')
      .selectAll()
      .where('subscription_id', '=', subscriptionId.toLowerCase())
      .where('name_key', '=', keyOf(name))
      .executeTakeFirst();
    if (!row)
      throw notFound(
        'ResourceGroupNotFound',
        `Resource group '${name}' could not be found. Create it first with PUT /subscriptions/${subscriptionId}/resourcegroups/${name}.`,
      );
    return toGroup(row);
  }

  async list(subscriptionId: string, after: string | undefined, limit: number): Promise<ResourceGroup[]> {
    await this.requireSubscription(subscriptionId);
    let q = this.db.selectFrom('resource_groups').selectAll().where('subscription_id', '=', subscriptionId.toLowerCase());
    if (after) q = q.where('name_key', '>', after);
    return (await q.orderBy('name_key').limit(limit).execute()).map(toGroup);
  }

  async createOrUpdate(
    p: Principal,
    subscriptionId: string,
    name: string,
    input: { location?: string; tags?: unknown },
    pre?: Preconditions,
  ): Promise<{ group: ResourceGroup; created: boolean }> {
    await this.requireSubscription(subscriptionId);
    checkName('resourceGroup', name);
    const tags = checkTags(input.tags);
    const sub = subscriptionId.toLowerCase();
    return this.db.transaction().execute(async (tx) => {
      const row = await forUpdate(
        tx,
        tx.selectFrom('resource_groups').selectAll().where('subscription_id', '=', sub).where('name_key', '=', keyOf(name)),
      ).executeTakeFirst();
      checkPreconditions(`Resource group '${name}'`, row?.etag, pre);
      if (row) {
        if (input.location && this.regions.require(input.location).name !== row.location) {
          throw conflict(
            `Resource group '${row.name}' already exists in region '${row.location}'; a resource group cannot move. Use location '${row.location}' or choose another name.`,
            'location',
            'InvalidResourceGroupLocation',
          );
        }
        const upd = { tags: JSON.stringify(tags), ...modificationStamp(p) };
        await tx.updateTable('resource_groups').set(upd).where('subscription_id', '=', sub).where('name_key', '=', keyOf(name)).execute();
        return { group: toGroup({ ...row, ...upd }), created: false };
      }
      const location = this.regions.require(input.location).name;
      const values: ResourceGroupTable = { subscription_id: sub, name, name_key: keyOf(name), location, tags: JSON.stringify(tags), ...creationStamp(p) };
      await tx.insertInto('resource_groups').values(values).execute();
      return { group: toGroup(values), created: true };
    });
  }

  /** Deletes an empty resource group; refuses with Conflict while resources remain in it. */
  async delete(subscriptionId: string, name: string, pre?: Preconditions): Promise<boolean> {
    await this.requireSubscription(subscriptionId);
    const sub = subscriptionId.toLowerCase();
    return this.db.transaction().execute(async (tx) => {
      const row = await forUpdate(
        tx,
        tx.selectFrom('resource_groups').selectAll().where('subscription_id', '=', sub).where('name_key', '=', keyOf(name)),
      ).executeTakeFirst();
      checkPreconditions(`Resource group '${name}'`, row?.etag, pre);
      if (!row) return false;
      const inside: string[] = [];
      for (const c of CONTAINED) {
        const rows = await tx
          .selectFrom(c.table)
          .select('name')
          .where('subscription_id', '=', sub)
          .where('resource_group_key', '=', row.name_key)
          .limit(5)
          .execute();
        inside.push(...rows.map((r) => `${c.type} '${r.name}'`));
      }
      if (inside.length) {
        throw conflict(`Resource group '${row.name}' still contains ${inside.join(', ')}. Delete those resources first, then delete the group.`);
      }
      await tx.deleteFrom('resource_groups').where('subscription_id', '=', sub).where('name_key', '=', row.name_key).execute();
      return true;
    });
  }
}
