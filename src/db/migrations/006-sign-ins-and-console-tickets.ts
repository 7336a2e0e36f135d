// Failed sign-ins and console tickets live in the database, so that every
// server process sharing it (PostgreSQL) limits sign-in attempts together
// and accepts a console ticket another process issued.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type Db = Kysely<any>;

export async function up(db: Db): Promise<void> {
  await db.schema
    .createTable('sign_in_failures')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('sign_in_failures_key_at').on('sign_in_failures').columns(['key', 'at']).execute();
  await db.schema.createIndex('sign_in_failures_at').on('sign_in_failures').column('at').execute();
  await db.schema
    .createTable('console_tickets')
    .addColumn('ticket_hash', 'text', (c) => c.primaryKey())
    .addColumn('vm_key', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('kinds', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('console_tickets_expires_at').on('console_tickets').column('expires_at').execute();
}

export async function down(db: Db): Promise<void> {
  await db.schema.dropTable('console_tickets').execute();
  await db.schema.dropTable('sign_in_failures').execute();
}
