// API tokens. A token is `lfg_<id>_<secret>`: the prefix lets secret scanners
// spot a leaked token, the id finds the row, and only a SHA-256 hash of the
// secret is stored (the secret is 256 random bits, so a slow hash adds nothing).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, TokenTable } from '../db/schema.js';
import { invalidParameter, notFound } from '../errors.js';
import { nowIso } from '../lib/time.js';
import { type Principal, ROLES, type Role } from './common.js';

export interface TokenInfo {
  id: string;
  name: string;
  subject: string;
  role: Role;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const PREFIX = 'lfg_';
const TOKEN_RE = /^lfg_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

const toInfo = (r: TokenTable): TokenInfo => ({
  id: r.id,
  name: r.name,
  subject: r.subject,
  role: r.role as Role,
  createdAt: r.created_at,
  createdBy: r.created_by,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

export class TokenService {
  private lastUsedWritten = new Map<string, number>();

  constructor(private readonly db: Kysely<Database>) {}

  /** Builds a token string from its id and secret (exported for `LABFORGE_ADMIN_TOKEN` checks). */
  static isWellFormed(token: string): boolean {
    return TOKEN_RE.test(token);
  }

  static generate(): { id: string; token: string; secret: string } {
    const id = randomBytes(9)
      .toString('base64url')
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '0')
      .slice(0, 12)
      .padEnd(12, '0');
    const secret = randomBytes(32).toString('base64url');
    return { id, secret, token: `${PREFIX}${id}_${secret}` };
  }

  async create(
    by: Principal | { subject: string },
    input: { name: string; subject?: string; role: string; expiresInDays?: number },
    presetToken?: string,
  ): Promise<{ info: TokenInfo; token: string }> {
    const role = ROLES.find((r) => r === input.role);
    if (!role) throw invalidParameter(`'${input.role}' is not a role. Use one of: ${ROLES.join(', ')}.`, 'role');
    if (!input.name || input.name.length > 100)
      throw invalidParameter('A token needs a name of 1-100 characters, to recognise it later (for example "ci-pipeline").', 'name');
    if (input.expiresInDays !== undefined && (!Number.isInteger(input.expiresInDays) || input.expiresInDays < 1 || input.expiresInDays > 3650)) {
      throw invalidParameter('expiresInDays must be a whole number of days from 1 to 3650.', 'expiresInDays');
    }
    let gen = TokenService.generate();
    if (presetToken !== undefined) {
      const m = TOKEN_RE.exec(presetToken);
      if (!m) {
        throw invalidParameter(
          'The preset admin token (LABFORGE_ADMIN_TOKEN) is not a labforge token: it must look like lfg_<12 lowercase letters or digits>_<43 base64url characters>. Generate one with `labforge token generate`.',
          'LABFORGE_ADMIN_TOKEN',
        );
      }
      gen = { id: m[1] as string, secret: m[2] as string, token: presetToken };
    }
    const row: TokenTable = {
      id: gen.id,
      name: input.name,
      subject: input.subject || input.name,
      role,
      secret_hash: hash(gen.secret),
      created_at: nowIso(),
      created_by: by.subject,
      expires_at: input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86400_000).toISOString() : null,
      last_used_at: null,
      revoked_at: null,
    };
    await this.db.insertInto('tokens').values(row).execute();
    return { info: toInfo(row), token: gen.token };
  }

  /** A session token for a person who signed in: named "session", it ends after `hours`. */
  async createSession(subject: string, role: Role, hours: number): Promise<{ info: TokenInfo; token: string }> {
    const gen = TokenService.generate();
    const row: TokenTable = {
      id: gen.id,
      name: 'session',
      subject,
      role,
      secret_hash: hash(gen.secret),
      created_at: nowIso(),
      created_by: subject,
      expires_at: new Date(Date.now() + hours * 3600_000).toISOString(),
      last_used_at: null,
      revoked_at: null,
    };
    await this.db.insertInto('tokens').values(row).execute();
    return { info: toInfo(row), token: gen.token };
  }

  /** Returns the principal for a token, or undefined when it is unknown, revoked, expired or malformed. */
  async verify(token: string): Promise<Principal | undefined> {
    const m = TOKEN_RE.exec(token);
    if (!m) return undefined;
    const row = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('id', '=', m[1] as string)
      .executeTakeFirst();
    if (!row || row.revoked_at) return undefined;
    if (row.expires_at && row.expires_at < nowIso()) return undefined;
    const a = Buffer.from(row.secret_hash, 'hex');
    const b = Buffer.from(hash(m[2] as string), 'hex');
    if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
    // Record use at most once a minute per token: a write per request would halve read throughput.
    const last = this.lastUsedWritten.get(row.id) ?? 0;
    if (Date.now() - last > 60_000) {
      this.lastUsedWritten.set(row.id, Date.now());
      await this.db.updateTable('tokens').set({ last_used_at: nowIso() }).where('id', '=', row.id).execute();
    }
    return { tokenId: row.id, subject: row.subject, role: row.role as Role };
  }

  async list(): Promise<TokenInfo[]> {
    return (await this.db.selectFrom('tokens').selectAll().orderBy('created_at').execute()).map(toInfo);
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom('tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async revoke(id: string): Promise<TokenInfo> {
    const row = await this.db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('ResourceNotFound', `There is no token with id '${id}'. List tokens with \`labforge token list\`.`);
    if (!row.revoked_at) {
      const at = nowIso();
      await this.db.updateTable('tokens').set({ revoked_at: at }).where('id', '=', id).execute();
      row.revoked_at = at;
    }
    return toInfo(row);
  }
}
