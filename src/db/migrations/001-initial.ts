// The first schema: subscriptions, resource groups, the gallery family,
// durable operations and API tokens.
import type { CreateTableBuilder, Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type Db = Kysely<any>;

export function resourceColumns<T extends string>(t: CreateTableBuilder<T, never>) {
  return t
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('subscription_id', 'text', (c) => c.notNull())
    .addColumn('resource_group', 'text', (c) => c.notNull())
    .addColumn('resource_group_key', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('etag', 'text', (c) => c.notNull())
    .addColumn('provisioning_state', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_by_type', 'text', (c) => c.notNull())
    .addColumn('modified_at', 'text', (c) => c.notNull())
    .addColumn('modified_by', 'text', (c) => c.notNull())
    .addColumn('modified_by_type', 'text', (c) => c.notNull());
}

export async function up(db: Db): Promise<void> {
  await db.schema
    .createTable('meta')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('subscriptions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('resource_groups')
    .addColumn('subscription_id', 'text', (c) => c.notNull().references('subscriptions.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('etag', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_by_type', 'text', (c) => c.notNull())
    .addColumn('modified_at', 'text', (c) => c.notNull())
    .addColumn('modified_by', 'text', (c) => c.notNull())
    .addColumn('modified_by_type', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('resource_groups_pk', ['subscription_id', 'name_key'])
    .execute();

  await resourceColumns(db.schema.createTable('galleries'))
    .addColumn('description', 'text')
    .addColumn('unique_name', 'text', (c) => c.notNull())
    .addUniqueConstraint('galleries_name_uq', ['subscription_id', 'resource_group_key', 'name_key'])
    .execute();

  await resourceColumns(db.schema.createTable('gallery_images'))
    .addColumn('gallery_id', 'text', (c) => c.notNull().references('galleries.id'))
    .addColumn('os_type', 'text', (c) => c.notNull())
    .addColumn('os_state', 'text', (c) => c.notNull())
    .addColumn('hyper_v_generation', 'text', (c) => c.notNull())
    .addColumn('architecture', 'text', (c) => c.notNull())
    .addColumn('publisher', 'text', (c) => c.notNull())
    .addColumn('offer', 'text', (c) => c.notNull())
    .addColumn('sku', 'text', (c) => c.notNull())
    .addColumn('identity_key', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('eula', 'text')
    .addColumn('privacy_statement_uri', 'text')
    .addColumn('release_note_uri', 'text')
    .addColumn('end_of_life_date', 'text')
    .addColumn('recommended', 'text', (c) => c.notNull())
    .addColumn('disallowed', 'text', (c) => c.notNull())
    .addColumn('features', 'text', (c) => c.notNull())
    .addColumn('purchase_plan', 'text')
    .addUniqueConstraint('gallery_images_name_uq', ['gallery_id', 'name_key'])
    .addUniqueConstraint('gallery_images_identity_uq', ['gallery_id', 'identity_key'])
    .execute();

  await resourceColumns(db.schema.createTable('gallery_image_versions'))
    .addColumn('image_id', 'text', (c) => c.notNull().references('gallery_images.id'))
    .addColumn('major', 'integer', (c) => c.notNull())
    .addColumn('minor', 'integer', (c) => c.notNull())
    .addColumn('patch', 'integer', (c) => c.notNull())
    .addColumn('exclude_from_latest', 'integer', (c) => c.notNull())
    .addColumn('end_of_life_date', 'text')
    .addColumn('replica_count', 'integer', (c) => c.notNull())
    .addColumn('target_regions', 'text', (c) => c.notNull())
    .addColumn('storage_profile', 'text', (c) => c.notNull())
    .addColumn('replication', 'text', (c) => c.notNull())
    .addColumn('published_date', 'text', (c) => c.notNull())
    .addUniqueConstraint('gallery_image_versions_name_uq', ['image_id', 'name_key'])
    .execute();
  await db.schema.createIndex('gallery_image_versions_order_ix').on('gallery_image_versions').columns(['image_id', 'major', 'minor', 'patch']).execute();

  await db.schema
    .createTable('operations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('subscription_id', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('target_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('percent_complete', 'integer', (c) => c.notNull())
    .addColumn('status_message', 'text')
    .addColumn('input', 'text', (c) => c.notNull())
    .addColumn('checkpoint', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('cancel_requested', 'integer', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_expires_at', 'text')
    .addColumn('lease_token', 'integer', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text')
    .addColumn('ended_at', 'text')
    .execute();
  await db.schema.createIndex('operations_state_ix').on('operations').columns(['state', 'created_at']).execute();
  await db.schema.createIndex('operations_target_ix').on('operations').columns(['target_id']).execute();

  await db.schema
    .createTable('tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text')
    .addColumn('last_used_at', 'text')
    .addColumn('revoked_at', 'text')
    .execute();
}

export async function down(db: Db): Promise<void> {
  for (const t of ['tokens', 'operations', 'gallery_image_versions', 'gallery_images', 'galleries', 'resource_groups', 'subscriptions', 'meta']) {
    await db.schema.dropTable(t).execute();
  }
}
