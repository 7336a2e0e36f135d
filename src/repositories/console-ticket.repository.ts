// The `console_tickets` table: one-minute tickets that open a VM's console
// channels over WebSocket, kept hashed (like tokens) so that every server
// process sharing the database can redeem a ticket another one issued.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';

const hashOf = (ticket: string) => createHash('sha256').update(ticket).digest('hex');

export type ConsoleChannel = 'vnc' | 'serial';

export class ConsoleTicketRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores a ticket for `channels` of a VM until `expiresAt`, and drops expired ones. */
  async issue(ticket: string, vmKey: string, expiresAt: string, channels: ConsoleChannel[]): Promise<void> {
    await this.db.deleteFrom('console_tickets').where('expires_at', '<', new Date().toISOString()).execute();
    await this.db
      .insertInto('console_tickets')
      .values({ ticket_hash: hashOf(ticket), vm_key: vmKey, expires_at: expiresAt, kinds: channels.join(',') })
      .execute();
  }

  /** Uses up one channel of a live ticket; the VM's key, or undefined when the ticket is unknown, expired or that channel was used. */
  async redeem(ticket: string, channel: ConsoleChannel): Promise<string | undefined> {
    const hash = hashOf(ticket);
    const t = await this.db.selectFrom('console_tickets').selectAll().where('ticket_hash', '=', hash).executeTakeFirst();
    const kinds = t ? t.kinds.split(',').filter(Boolean) : [];
    if (!t || t.expires_at < new Date().toISOString() || !kinds.includes(channel)) return undefined;
    // Only one of two redeemers racing for the same channel gets it.
    const used = await this.db
      .updateTable('console_tickets')
      .set({ kinds: kinds.filter((k) => k !== channel).join(',') })
      .where('ticket_hash', '=', hash)
      .where('kinds', '=', t.kinds)
      .executeTakeFirst();
    return Number(used.numUpdatedRows) === 1 ? t.vm_key : undefined;
  }
}
