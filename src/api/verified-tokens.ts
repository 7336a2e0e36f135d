// Tokens verified a moment ago, so that a burst of requests made with one
// token does not read and check it again each time. An entry holds while the
// store's change mark stays the same — revoking, deleting or changing a token,
// signing out or changing an account is a write, so the next request verifies
// again — for at most a second, and never past the token's own expiry time.
// Entries are keyed by a hash of the token, so
// no secret is kept. Where the store has no change mark (PostgreSQL) nothing is kept.
import { createHash } from 'node:crypto';
import type { Principal } from '../lib/principal.js';

interface Entry {
  mark: string;
  until: number;
  principal: Principal;
}

export class VerifiedTokens {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  private static key(token: string): string {
    return createHash('sha256').update(token).digest('base64');
  }

  /** The principal of a token verified under this change mark less than a second ago. */
  get(token: string, mark: string | undefined): Principal | undefined {
    if (mark === undefined) return undefined;
    const e = this.entries.get(VerifiedTokens.key(token));
    return e && e.mark === mark && Date.now() < e.until ? e.principal : undefined;
  }

  /** Remembers a token verified under this change mark, until a second has passed or the token expires, whichever comes first. */
  set(token: string, mark: string | undefined, principal: Principal, expiresAt: string | null = null): void {
    if (mark === undefined) return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    const until = Math.min(Date.now() + this.ttlMs, expiresAt ? Date.parse(expiresAt) : Number.POSITIVE_INFINITY);
    this.entries.set(VerifiedTokens.key(token), { mark, until, principal });
  }
}
