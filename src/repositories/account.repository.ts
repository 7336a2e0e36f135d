// The `accounts` and `sign_in_failures` tables: the people who sign in with
// email and password, and the failed attempts counted to slow down guessing.
// Every query on the two tables is here, with the mapping of a row to
// `AccountRecord`. The account service is the only writer.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AccountTable, Database } from '../db/schema.js';
import type { Role } from '../lib/principal.js';

export interface AccountRecord {
  key: string;
  /** In lower case. */
  email: string;
  displayName: string | null;
  role: Role;
  /** scrypt$N$r$p$salt$hash, or null until the person sets a password. */
  passwordHash: string | null;
  /** SHA-256 of a one-time invitation secret. */
  invitationHash: string | null;
  invitationExpiresAt: string | null;
  createdAt: string;
  createdBy: string;
  lastSignInAt: string | null;
}

/** A change to an account (only the fields given change). */
export type AccountChange = Partial<Pick<AccountRecord, 'displayName' | 'role' | 'passwordHash' | 'invitationHash' | 'invitationExpiresAt' | 'lastSignInAt'>>;

const toAccount = (r: AccountTable): AccountRecord => ({
  key: r.id,
  email: r.email,
  displayName: r.display_name,
  role: r.role as Role,
  passwordHash: r.password_hash,
  invitationHash: r.invitation_hash,
  invitationExpiresAt: r.invitation_expires_at,
  createdAt: r.created_at,
  createdBy: r.created_by,
  lastSignInAt: r.last_sign_in_at,
});

function toColumns(c: AccountChange): Partial<AccountTable> {
  const out: Partial<AccountTable> = {};
  if (c.role !== undefined) out.role = c.role;
  if (c.displayName !== undefined) out.display_name = c.displayName;
  if (c.passwordHash !== undefined) out.password_hash = c.passwordHash;
  if (c.invitationHash !== undefined) out.invitation_hash = c.invitationHash;
  if (c.invitationExpiresAt !== undefined) out.invitation_expires_at = c.invitationExpiresAt;
  if (c.lastSignInAt !== undefined) out.last_sign_in_at = c.lastSignInAt;
  return out;
}

export class AccountRepository {
  constructor(readonly db: Kysely<Database>) {}

  async byEmail(email: string): Promise<AccountRecord | undefined> {
    const r = await this.db.selectFrom('accounts').selectAll().where('email', '=', email).executeTakeFirst();
    return r ? toAccount(r) : undefined;
  }

  /** Every account by email. */
  async list(): Promise<AccountRecord[]> {
    return (await this.db.selectFrom('accounts').selectAll().orderBy('email').execute()).map(toAccount);
  }

  async insert(a: Omit<AccountRecord, 'key'>): Promise<void> {
    await this.db
      .insertInto('accounts')
      .values({
        id: randomUUID(),
        email: a.email,
        display_name: a.displayName,
        role: a.role,
        password_hash: a.passwordHash,
        invitation_hash: a.invitationHash,
        invitation_expires_at: a.invitationExpiresAt,
        created_at: a.createdAt,
        created_by: a.createdBy,
        last_sign_in_at: a.lastSignInAt,
      })
      .execute();
  }

  async update(key: string, change: AccountChange): Promise<void> {
    const set = toColumns(change);
    if (Object.keys(set).length) await this.db.updateTable('accounts').set(set).where('id', '=', key).execute();
  }

  async delete(key: string): Promise<void> {
    await this.db.deleteFrom('accounts').where('id', '=', key).execute();
  }

  // ---- failed sign-ins, by key (`e:<email>` or `a:<address>`) ----

  /** When the latest (at most `limit`) failures of a key after `since` happened, newest first. */
  async failuresSince(key: string, since: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('sign_in_failures')
      .select('at')
      .where('key', '=', key)
      .where('at', '>', since)
      .orderBy('at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => r.at);
  }

  /** Records a failure, and forgets every failure at or before `forgetUpTo`. */
  async addFailure(key: string, at: string, forgetUpTo: string): Promise<void> {
    await this.db.insertInto('sign_in_failures').values({ id: randomUUID(), key, at }).execute();
    await this.db.deleteFrom('sign_in_failures').where('at', '<=', forgetUpTo).execute();
  }

  async clearFailures(key: string): Promise<void> {
    await this.db.deleteFrom('sign_in_failures').where('key', '=', key).execute();
  }
}
