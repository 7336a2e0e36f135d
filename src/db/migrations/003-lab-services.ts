// Lab Services: lab plans (lab accounts) with their attached gallery and the
// images enabled for creators, labs with their template and published seats,
// and lab users. Lab VMs are rows of virtual_machines tagged with their lab.
import type { Kysely } from 'kysely';
import { resourceColumns } from './001-initial.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type Db = Kysely<any>;

export async function up(db: Db): Promise<void> {
  await resourceColumns(db.schema.createTable('lab_plans'))
    .addColumn('allowed_regions', 'text', (c) => c.notNull())
    .addColumn('default_connection_profile', 'text', (c) => c.notNull())
    .addColumn('default_auto_shutdown_profile', 'text', (c) => c.notNull())
    .addColumn('shared_gallery_id', 'text')
    .addColumn('support_info', 'text')
    .addColumn('linked_lms_instance', 'text')
    .addUniqueConstraint('lab_plans_name_uq', ['subscription_id', 'resource_group_key', 'name_key'])
    .execute();

  await db.schema
    .createTable('lab_plan_images')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('lab_plan_id', 'text', (c) => c.notNull().references('lab_plans.id').onDelete('cascade'))
    .addColumn('image_id', 'text', (c) => c.notNull())
    .addColumn('enabled_state', 'text', (c) => c.notNull())
    .addColumn('modified_at', 'text', (c) => c.notNull())
    .addColumn('modified_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('lab_plan_images_uq', ['lab_plan_id', 'image_id'])
    .execute();

  await resourceColumns(db.schema.createTable('labs'))
    .addColumn('lab_plan_id', 'text')
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('vm_profile', 'text', (c) => c.notNull())
    .addColumn('auto_shutdown_profile', 'text', (c) => c.notNull())
    .addColumn('connection_profile', 'text', (c) => c.notNull())
    .addColumn('security_profile', 'text', (c) => c.notNull())
    .addColumn('admin_password_hash', 'text')
    .addColumn('source_image_id', 'text')
    .addColumn('version_id', 'text', (c) => c.notNull())
    .addColumn('published_image', 'text')
    .addColumn('exported_image_id', 'text')
    .addColumn('export_operation_id', 'text')
    .addUniqueConstraint('labs_name_uq', ['subscription_id', 'resource_group_key', 'name_key'])
    .execute();

  await db.schema
    .createTable('lab_users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('lab_id', 'text', (c) => c.notNull().references('labs.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text')
    .addColumn('registration_state', 'text', (c) => c.notNull())
    .addColumn('invitation_state', 'text', (c) => c.notNull())
    .addColumn('invitation_sent', 'text')
    .addColumn('additional_usage_quota_seconds', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('lab_users_name_uq', ['lab_id', 'name_key'])
    .addUniqueConstraint('lab_users_email_uq', ['lab_id', 'email'])
    .execute();

  await db.schema.alterTable('virtual_machines').addColumn('lab_id', 'text').execute();
  await db.schema.alterTable('virtual_machines').addColumn('vm_type', 'text').execute();
  await db.schema
    .alterTable('virtual_machines')
    .addColumn('usage_seconds', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('virtual_machines').addColumn('running_since', 'text').execute();
  await db.schema.createIndex('virtual_machines_lab_ix').on('virtual_machines').columns(['lab_id']).execute();
}

export async function down(db: Db): Promise<void> {
  await db.schema.dropIndex('virtual_machines_lab_ix').execute();
  for (const c of ['running_since', 'usage_seconds', 'vm_type', 'lab_id']) await db.schema.alterTable('virtual_machines').dropColumn(c).execute();
  for (const t of ['lab_users', 'labs', 'lab_plan_images', 'lab_plans']) await db.schema.dropTable(t).execute();
}
