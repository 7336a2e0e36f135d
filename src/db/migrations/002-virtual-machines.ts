// Virtual machines: one row per VM, with its source image version, size,
// identity settings and the power state last recorded (reconciled with the
// compute driver at server start).
import type { Kysely } from 'kysely';
import { resourceColumns } from './001-initial.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type Db = Kysely<any>;

export async function up(db: Db): Promise<void> {
  await resourceColumns(db.schema.createTable('virtual_machines'))
    .addColumn('image_reference', 'text', (c) => c.notNull())
    .addColumn('version_id', 'text', (c) => c.notNull())
    .addColumn('exact_version', 'text', (c) => c.notNull())
    .addColumn('os_type', 'text', (c) => c.notNull())
    .addColumn('os_state', 'text', (c) => c.notNull())
    .addColumn('hyper_v_generation', 'text', (c) => c.notNull())
    .addColumn('size', 'text', (c) => c.notNull())
    .addColumn('vcpus', 'integer', (c) => c.notNull())
    .addColumn('memory_mib', 'integer', (c) => c.notNull())
    .addColumn('computer_name', 'text', (c) => c.notNull())
    .addColumn('admin_username', 'text')
    .addColumn('admin_password_hash', 'text')
    .addColumn('ssh_public_keys', 'text', (c) => c.notNull())
    .addColumn('custom_data', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('status_message', 'text')
    .addColumn('host_port', 'integer')
    .addColumn('guest_port', 'integer', (c) => c.notNull())
    .addColumn('generalized', 'integer', (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('base_file', 'text')
    .addUniqueConstraint('virtual_machines_name_uq', ['subscription_id', 'resource_group_key', 'name_key'])
    .execute();
  await db.schema.createIndex('virtual_machines_owner_ix').on('virtual_machines').columns(['owner']).execute();
}

export async function down(db: Db): Promise<void> {
  await db.schema.dropTable('virtual_machines').execute();
}
