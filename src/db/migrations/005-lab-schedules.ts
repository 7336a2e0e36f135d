// Lab schedules: times at which a lab's student VMs start and stop, once or
// on a daily or weekly pattern, in the lab's time zone.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type Db = Kysely<any>;

export async function up(db: Db): Promise<void> {
  await db.schema
    .createTable('lab_schedules')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('lab_id', 'text', (c) => c.notNull().references('labs.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('start_at', 'text')
    .addColumn('stop_at', 'text', (c) => c.notNull())
    .addColumn('recurrence', 'text')
    .addColumn('time_zone', 'text', (c) => c.notNull())
    .addColumn('notes', 'text')
    .addColumn('checked_until', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('lab_schedules_name_uq', ['lab_id', 'name_key'])
    .execute();
}

export async function down(db: Db): Promise<void> {
  await db.schema.dropTable('lab_schedules').execute();
}
