// People sign in as themselves: an account is an email with a role and a
// password stored as a salted scrypt hash (or, until the person chooses one,
// a one-time invitation). Signing in gives a session token bound to the person
// and their role; failed attempts are rate-limited per email and per address.
// Students register with their lab's registration code.
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { conflict, invalidParameter, LabforgeError, notFound, unauthorized } from '../errors.js';
import { nowIso } from '../lib/time.js';
import type { AccountChange, AccountRecord, AccountRepository } from '../repositories/account.repository.js';
import { type Principal, ROLES, type Role } from './common.js';
import type { LabUserService } from './lab-user.service.js';
import type { TokenService } from './token.service.js';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number, opts: object) => Promise<Buffer>;
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const SESSION_HOURS = 12;
const INVITATION_DAYS = 14;
const EMAIL = /^[^@\s]{1,64}@[^@\s]{1,189}$/;

export interface Account {
  email: string;
  displayName: string | null;
  role: Role;
  hasPassword: boolean;
  invitationPending: boolean;
  createdAt: string;
  createdBy: string;
  lastSignInAt: string | null;
}

export interface Session {
  token: string;
  expiresAt: string;
  subject: string;
  role: Role;
}

const toAccount = (r: AccountRecord): Account => ({
  email: r.email,
  displayName: r.displayName,
  role: r.role,
  hasPassword: r.passwordHash !== null,
  invitationPending: r.invitationHash !== null && (r.invitationExpiresAt ?? '') > nowIso(),
  createdAt: r.createdAt,
  createdBy: r.createdBy,
  lastSignInAt: r.lastSignInAt,
});

export async function hashSecret(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

async function verifySecret(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, key] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'base64');
  const got = await scrypt(password, Buffer.from(salt, 'base64'), want.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  return timingSafeEqual(want, got);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export function checkPassword(pw: string | undefined, field = 'password'): string {
  const classes = pw ? [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(pw)).length : 0;
  if (!pw || pw.length < 10 || pw.length > 200 || classes < 3) {
    throw invalidParameter(
      'A password must be 10-200 characters and contain three of: a lower-case letter, an upper-case letter, a digit, a special character.',
      field,
    );
  }
  return pw;
}

/**
 * Failed sign-ins per key (an email, an address): at most `limit` in `windowMs`. Kept in the database, so
 * server processes sharing it count together and a restart forgets nothing.
 */
class Limiter {
  constructor(
    private readonly records: AccountRepository,
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Seconds to wait before trying again, or 0. */
  async retryAfter(key: string): Promise<number> {
    const now = Date.now();
    const recent = await this.records.failuresSince(key, new Date(now - this.windowMs).toISOString(), this.limit);
    if (recent.length < this.limit) return 0;
    // The oldest of the last `limit` failures leaves the window first.
    const oldest = Date.parse(recent[recent.length - 1] as string);
    return Math.max(1, Math.ceil((this.windowMs - (now - oldest)) / 1000));
  }

  async fail(key: string): Promise<void> {
    const now = Date.now();
    await this.records.addFailure(key, new Date(now).toISOString(), new Date(now - this.windowMs).toISOString());
  }

  async clear(key: string): Promise<void> {
    await this.records.clearFailures(key);
  }
}

export class AccountService {
  private readonly byEmail: Limiter;
  private readonly byAddress: Limiter;

  constructor(
    private readonly records: AccountRepository,
    private readonly tokens: TokenService,
    private readonly labUsers: LabUserService,
  ) {
    this.byEmail = new Limiter(records, 5, 15 * 60_000);
    this.byAddress = new Limiter(records, 30, 15 * 60_000);
  }

  private normal(email: string | undefined): string {
    const e = (email ?? '').trim().toLowerCase();
    if (!EMAIL.test(e)) throw invalidParameter(`'${email ?? ''}' is not an email address.`, 'email');
    return e;
  }

  private async row(email: string): Promise<AccountRecord | undefined> {
    return this.records.byEmail(email);
  }

  async list(): Promise<Account[]> {
    return (await this.records.list()).map(toAccount);
  }

  async get(email: string): Promise<Account> {
    const r = await this.row(this.normal(email));
    if (!r) throw notFound('ResourceNotFound', `There is no account '${email}'. Create it with \`labforge user create\`.`);
    return toAccount(r);
  }

  /**
   * Creates or changes an account (admins). Without a password it gets a one-time invitation secret, returned
   * once, with which the person chooses their password (`register`).
   */
  async put(
    p: Principal,
    emailIn: string,
    input: { role?: string; displayName?: string | null; password?: string },
  ): Promise<{ account: Account; created: boolean; invitation?: { token: string; expiresAt: string } }> {
    const email = this.normal(emailIn);
    const role = input.role === undefined ? undefined : ROLES.find((r) => r === input.role);
    if (input.role !== undefined && !role) throw invalidParameter(`'${input.role}' is not a role. Use one of: ${ROLES.join(', ')}.`, 'role');
    const password = input.password === undefined ? undefined : await hashSecret(checkPassword(input.password));
    const existing = await this.row(email);
    const invite = !password && !existing?.passwordHash;
    const secret = invite ? randomBytes(24).toString('base64url') : undefined;
    const expiresAt = new Date(Date.now() + INVITATION_DAYS * 86400_000).toISOString();
    const change: AccountChange = {
      ...(role ? { role } : {}),
      ...(input.displayName !== undefined ? { displayName: input.displayName } : {}),
      ...(password ? { passwordHash: password, invitationHash: null, invitationExpiresAt: null } : {}),
      ...(secret ? { invitationHash: sha256(secret), invitationExpiresAt: expiresAt } : {}),
    };
    if (existing) {
      await this.records.update(existing.key, change);
      if (role && role !== existing.role) await this.endSessions(email);
    } else {
      await this.records.insert({
        email,
        displayName: input.displayName ?? null,
        role: role ?? 'user',
        passwordHash: password ?? null,
        invitationHash: secret ? sha256(secret) : null,
        invitationExpiresAt: secret ? expiresAt : null,
        createdAt: nowIso(),
        createdBy: p.subject,
        lastSignInAt: null,
      });
    }
    return { account: await this.get(email), created: !existing, ...(secret ? { invitation: { token: secret, expiresAt } } : {}) };
  }

  async delete(emailIn: string): Promise<boolean> {
    const email = this.normal(emailIn);
    const r = await this.row(email);
    if (!r) return false;
    await this.records.delete(r.key);
    await this.endSessions(email);
    return true;
  }

  /** Revokes every session of a person (their API tokens stay). */
  private async endSessions(email: string): Promise<void> {
    await this.tokens.endSessions(email);
  }

  private async session(r: AccountRecord): Promise<Session> {
    const { token, info } = await this.tokens.createSession(r.email, r.role, SESSION_HOURS);
    await this.records.update(r.key, { lastSignInAt: nowIso() });
    return { token, expiresAt: info.expiresAt as string, subject: r.email, role: r.role };
  }

  /** Email and password to a session token. Every failure says the same, and too many are refused for a while. */
  async signIn(emailIn: string | undefined, password: string | undefined, address: string): Promise<Session> {
    const email = (emailIn ?? '').trim().toLowerCase();
    const wait = Math.max(await this.byEmail.retryAfter(`e:${email}`), await this.byAddress.retryAfter(`a:${address}`));
    if (wait > 0) {
      throw Object.assign(
        new LabforgeError(
          429,
          'TooManyAttempts',
          `Too many failed sign-ins. Wait ${Math.ceil(wait / 60)} minute(s), then try again, or ask an admin to reset your password.`,
        ),
        { retryAfter: wait },
      );
    }
    const r = email ? await this.row(email) : undefined;
    // An unknown email costs the same time as a wrong password.
    const ok = r?.passwordHash ? await verifySecret(password ?? '', r.passwordHash) : await hashSecret(password ?? '').then(() => false);
    if (!r || !ok) {
      await this.byEmail.fail(`e:${email}`);
      await this.byAddress.fail(`a:${address}`);
      throw unauthorized(
        r && !r.passwordHash
          ? 'This account has no password yet: use the invitation or the registration code you were given to choose one.'
          : 'The email or the password is wrong.',
      );
    }
    await this.byEmail.clear(`e:${email}`);
    return this.session(r);
  }

  /** Ends the session the caller signed in with. */
  async signOut(p: Principal): Promise<void> {
    await this.tokens.endSession(p.tokenId);
  }

  /**
   * A person chooses their password: with the invitation an admin gave them, or (students) with their lab's
   * registration code, which also enrols them in that lab when it is open or lists their email.
   */
  async register(
    input: { email?: string; password?: string; invitation?: string; registrationCode?: string; displayName?: string },
    address: string,
  ): Promise<Session> {
    const email = this.normal(input.email);
    const wait = await this.byAddress.retryAfter(`a:${address}`);
    if (wait > 0) throw new LabforgeError(429, 'TooManyAttempts', `Too many failed attempts from this address. Wait ${Math.ceil(wait / 60)} minute(s).`);
    const hash = await hashSecret(checkPassword(input.password));
    const existing = await this.row(email);
    if (input.invitation) {
      if (!existing?.invitationHash || existing.invitationHash !== sha256(input.invitation) || (existing.invitationExpiresAt ?? '') < nowIso()) {
        await this.byAddress.fail(`a:${address}`);
        throw unauthorized('The invitation is not valid for this email: it is wrong, used or expired. Ask an admin for a new one.');
      }
      await this.records.update(existing.key, {
        passwordHash: hash,
        invitationHash: null,
        invitationExpiresAt: null,
        displayName: input.displayName ?? existing.displayName,
      });
      return this.session((await this.row(email)) as AccountRecord);
    }
    if (!input.registrationCode) throw invalidParameter("Give the invitation you were sent, or your lab's registration code.", 'registrationCode');
    if (existing?.passwordHash) {
      throw conflict('This email already has an account with a password: sign in, then use the registration code from your account.', 'email', 'AccountExists');
    }
    // A lab's code makes students only: it never completes an account an admin invited (whatever its role) or one
    // with another role. Those are redeemed with their own invitation secret.
    const invited = existing?.invitationHash !== null && existing?.invitationHash !== undefined && (existing.invitationExpiresAt ?? '') >= nowIso();
    if (existing && (invited || existing.role !== 'user')) {
      await this.byAddress.fail(`a:${address}`);
      throw conflict(
        'This email has an invitation waiting: choose your password with the invitation link or code you were sent (ask an admin for a new one if it expired), not with a lab code.',
        'registrationCode',
        'InvitationPending',
      );
    }
    const ok = await this.labUsers.registerStudent(email, input.registrationCode);
    if (!ok) {
      await this.byAddress.fail(`a:${address}`);
      throw unauthorized('The registration code is wrong, or this lab is not open and your email is not on its list. Check the code with your teacher.');
    }
    if (existing) {
      await this.records.update(existing.key, { passwordHash: hash, invitationHash: null, invitationExpiresAt: null });
    } else {
      await this.records.insert({
        email,
        displayName: input.displayName ?? null,
        role: 'user',
        passwordHash: hash,
        invitationHash: null,
        invitationExpiresAt: null,
        createdAt: nowIso(),
        createdBy: 'registration',
        lastSignInAt: null,
      });
    }
    return this.session((await this.row(email)) as AccountRecord);
  }
}
