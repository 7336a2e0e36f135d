// The `tokens` table: API and session tokens, kept as a SHA-256 of their
// secret. Every query on the table is here, with the mapping of a row to
// `TokenRecord`. The token service is the only writer.
import type { Kysely } from 'kysely';
import type { Database, TokenTable } from '../db/schema.js';
import type { Role } from '../lib/principal.js';

export interface TokenRecord {
  id: string;
  name: string;
  subject: string;
  role: Role;
  /** SHA-256 of the token's secret, in hex. */
  secretHash: string;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const toToken = (r: TokenTable): TokenRecord => ({
  id: r.id,
  name: r.name,
  subject: r.subject,
  role: r.role as Role,
  secretHash: r.secret_hash,
  createdAt: r.created_at,
  createdBy: r.created_by,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

/** Tokens that sessions are made of are named so. */
const SESSION = 'session';

export class TokenRepository {
  constructor(readonly db: Kysely<Database>) {}

  async insert(t: TokenRecord): Promise<TokenRecord> {
    const row: TokenTable = {
      id: t.id,
      name: t.name,
      subject: t.subject,
      role: t.role,
      secret_hash: t.secretHash,
      created_at: t.createdAt,
      created_by: t.createdBy,
      expires_at: t.expiresAt,
      last_used_at: t.lastUsedAt,
      revoked_at: t.revokedAt,
    };
    await this.db.insertInto('tokens').values(row).execute();
    return toToken(row);
  }

  async byId(id: string): Promise<TokenRecord | undefined> {
    const r = await this.db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toToken(r) : undefined;
  }

  /** Every token in the order they were made. */
  async list(): Promise<TokenRecord[]> {
    return (await this.db.selectFrom('tokens').selectAll().orderBy('created_at').execute()).map(toToken);
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom('tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async setLastUsed(id: string, at: string): Promise<void> {
    await this.db.updateTable('tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }

  async revoke(id: string, at: string): Promise<void> {
    await this.db.updateTable('tokens').set({ revoked_at: at }).where('id', '=', id).execute();
  }

  /** Revokes the session tokens of a subject that are not revoked yet (their API tokens stay). */
  async revokeSessionsOf(subject: string, at: string): Promise<void> {
    await this.db
      .updateTable('tokens')
      .set({ revoked_at: at })
      .where('subject', '=', subject)
      .where('name', '=', SESSION)
      .where('revoked_at', 'is', null)
      .execute();
  }

  /** Revokes one token if it is a session token. */
  async revokeSession(id: string, at: string): Promise<void> {
    await this.db.updateTable('tokens').set({ revoked_at: at }).where('id', '=', id).where('name', '=', SESSION).execute();
  }
}
