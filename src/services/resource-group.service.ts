// Subscriptions and resource groups: the containers every resource lives in.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, Db } from '../db/schema.js';
import { conflict, notFound } from '../errors.js';
import { nowIso } from '../lib/time.js';
import type { GalleryRepository } from '../repositories/gallery.repository.js';
import type { ResourceGroup, ResourceGroupRepository, Subscription } from '../repositories/resource-group.repository.js';
import { checkName, checkPreconditions, checkTags, type Preconditions, type Principal, type RegionCatalog } from './common.js';

export type { ResourceGroup, Subscription } from '../repositories/resource-group.repository.js';

export class ResourceGroupService {
  /** Resources that live inside a resource group, with the type name to report: a group holding any cannot be deleted. */
  private readonly contained: Array<{ type: string; names: (db: Db, sub: string, rg: string, limit: number) => Promise<string[]> }>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly records: ResourceGroupRepository,
    galleries: GalleryRepository,
    private readonly regions: RegionCatalog,
  ) {
    this.contained = [{ type: 'Microsoft.Compute/galleries', names: (db, sub, rg, limit) => galleries.galleryNamesInGroup(db, sub, rg, limit) }];
  }

  /** Creates the first subscription when the store is new; returns every subscription. */
  async ensureDefaultSubscription(): Promise<Subscription> {
    const existing = await this.records.firstSubscription();
    if (existing) return existing;
    return this.records.insertSubscription({ id: randomUUID(), displayName: 'Default', state: 'Enabled', createdAt: nowIso() });
  }

  async listSubscriptions(): Promise<Subscription[]> {
    return this.records.subscriptions();
  }

  async requireSubscription(id: string, db: Db = this.db): Promise<Subscription> {
    const row = await this.records.subscription(id, db);
    if (!row) {
      throw notFound('SubscriptionNotFound', `The subscription '${id}' could not be found. List the subscriptions your token may use with GET /subscriptions.`);
    }
    return row;
  }

  /** Pass `db` when inside a transaction: SQLite has one connection, and a query outside the transaction would wait for it forever. */
  async get(subscriptionId: string, name: string, db: Db = this.db): Promise<ResourceGroup> {
    await this.requireSubscription(subscriptionId, db);
    const row = await this.records.group(db, subscriptionId, name);
    if (!row)
      throw notFound(
        'ResourceGroupNotFound',
        `Resource group '${name}' could not be found. Create it first with PUT /subscriptions/${subscriptionId}/resourcegroups/${name}.`,
      );
    return row;
  }

  async list(subscriptionId: string, after: string | undefined, limit: number): Promise<ResourceGroup[]> {
    await this.requireSubscription(subscriptionId);
    return this.records.list(subscriptionId, after, limit);
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
      const row = await this.records.group(tx, sub, name, true);
      checkPreconditions(`Resource group '${name}'`, row?.etag, pre);
      if (row) {
        if (input.location && this.regions.require(input.location).name !== row.location) {
          throw conflict(
            `Resource group '${row.name}' already exists in region '${row.location}'; a resource group cannot move. Use location '${row.location}' or choose another name.`,
            'location',
            'InvalidResourceGroupLocation',
          );
        }
        return { group: await this.records.modifyTags(tx, row, p, tags), created: false };
      }
      const location = this.regions.require(input.location).name;
      return { group: await this.records.insert(tx, p, { subscriptionId: sub, name, location, tags }), created: true };
    });
  }

  /** Deletes an empty resource group; refuses with Conflict while resources remain in it. */
  async delete(subscriptionId: string, name: string, pre?: Preconditions): Promise<boolean> {
    await this.requireSubscription(subscriptionId);
    const sub = subscriptionId.toLowerCase();
    return this.db.transaction().execute(async (tx) => {
      const row = await this.records.group(tx, sub, name, true);
      checkPreconditions(`Resource group '${name}'`, row?.etag, pre);
      if (!row) return false;
      const inside: string[] = [];
      for (const c of this.contained) {
        const names = await c.names(tx, sub, row.name, 5);
        inside.push(...names.map((n) => `${c.type} '${n}'`));
      }
      if (inside.length) {
        throw conflict(`Resource group '${row.name}' still contains ${inside.join(', ')}. Delete those resources first, then delete the group.`);
      }
      await this.records.delete(tx, sub, row.name);
      return true;
    });
  }
}
