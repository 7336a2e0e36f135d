// People's accounts: email and a slow salted password hash, or a pending
// invitation; signing in gives a session token (a row of tokens).
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type Db = Kysely<any>;

export async function up(db: Db): Promise<void> {
  await db.schema
    .createTable('accounts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('display_name', 'text')
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text')
    .addColumn('invitation_hash', 'text')
    .addColumn('invitation_expires_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('last_sign_in_at', 'text')
    .execute();
}

export async function down(db: Db): Promise<void> {
  await db.schema.dropTable('accounts').execute();
}
