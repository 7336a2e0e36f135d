// API tokens. A token is `lfg_<id>_<secret>`: the prefix lets secret scanners
// spot a leaked token, the id finds the row, and only a SHA-256 hash of the
// secret is stored (the secret is 256 random bits, so a slow hash adds nothing).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { invalidParameter, notFound } from '../errors.js';
import { nowIso } from '../lib/time.js';
import type { TokenRecord, TokenRepository } from '../repositories/token.repository.js';
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

const toInfo = (r: TokenRecord): TokenInfo => ({
  id: r.id,
  name: r.name,
  subject: r.subject,
  role: r.role,
  createdAt: r.createdAt,
  createdBy: r.createdBy,
  expiresAt: r.expiresAt,
  lastUsedAt: r.lastUsedAt,
  revokedAt: r.revokedAt,
});

export class TokenService {
  private lastUsedWritten = new Map<string, number>();

  constructor(private readonly records: TokenRepository) {}

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
    const t = await this.records.insert({
      id: gen.id,
      name: input.name,
      subject: input.subject || input.name,
      role,
      secretHash: hash(gen.secret),
      createdAt: nowIso(),
      createdBy: by.subject,
      expiresAt: input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86400_000).toISOString() : null,
      lastUsedAt: null,
      revokedAt: null,
    });
    return { info: toInfo(t), token: gen.token };
  }

  /** A session token for a person who signed in: named "session", it ends after `hours`. */
  async createSession(subject: string, role: Role, hours: number): Promise<{ info: TokenInfo; token: string }> {
    const gen = TokenService.generate();
    const t = await this.records.insert({
      id: gen.id,
      name: 'session',
      subject,
      role,
      secretHash: hash(gen.secret),
      createdAt: nowIso(),
      createdBy: subject,
      expiresAt: new Date(Date.now() + hours * 3600_000).toISOString(),
      lastUsedAt: null,
      revokedAt: null,
    });
    return { info: toInfo(t), token: gen.token };
  }

  /** Returns the principal for a token, or undefined when it is unknown, revoked, expired or malformed. */
  async verify(token: string): Promise<Principal | undefined> {
    return (await this.verifyUntil(token))?.principal;
  }

  /** The token's principal and when the token stops working (null: never), or undefined when it is not valid now. */
  async verifyUntil(token: string): Promise<{ principal: Principal; expiresAt: string | null } | undefined> {
    const m = TOKEN_RE.exec(token);
    if (!m) return undefined;
    const row = await this.records.byId(m[1] as string);
    if (!row || row.revokedAt) return undefined;
    if (row.expiresAt && row.expiresAt < nowIso()) return undefined;
    const a = Buffer.from(row.secretHash, 'hex');
    const b = Buffer.from(hash(m[2] as string), 'hex');
    if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
    // Record use at most once a minute per token: a write per request would halve read throughput.
    const last = this.lastUsedWritten.get(row.id) ?? 0;
    if (Date.now() - last > 60_000) {
      this.lastUsedWritten.set(row.id, Date.now());
      await this.records.setLastUsed(row.id, nowIso());
    }
    return { principal: { tokenId: row.id, subject: row.subject, role: row.role }, expiresAt: row.expiresAt };
  }

  async list(): Promise<TokenInfo[]> {
    return (await this.records.list()).map(toInfo);
  }

  async count(): Promise<number> {
    return this.records.count();
  }

  async revoke(id: string): Promise<TokenInfo> {
    const row = await this.records.byId(id);
    if (!row) throw notFound('ResourceNotFound', `There is no token with id '${id}'. List tokens with \`labforge token list\`.`);
    if (!row.revokedAt) {
      const at = nowIso();
      await this.records.revoke(id, at);
      row.revokedAt = at;
    }
    return toInfo(row);
  }

  /** Revokes every session of a person (their API tokens stay). */
  async endSessions(subject: string): Promise<void> {
    await this.records.revokeSessionsOf(subject, nowIso());
  }

  /** Ends one session (a token that is not a session's stays valid). */
  async endSession(tokenId: string): Promise<void> {
    await this.records.revokeSession(tokenId, nowIso());
  }
}
