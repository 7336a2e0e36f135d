// Durable operations: rows in the `operations` table claimed by workers with
// a lease. Every write a worker makes is fenced by the lease token it got at
// claim time, so a worker whose lease expired cannot overwrite the progress
// of the worker that took over.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Dialect } from '../db/database.js';
import type { Database, Db, OperationTable } from '../db/schema.js';
import type { ErrorDetail } from '../lib/errors.js';
import { nowIso } from '../lib/time.js';

export type OperationState = 'InProgress' | 'Succeeded' | 'Failed' | 'Canceled';

export interface OperationError {
  code: string;
  message: string;
  target?: string;
  details?: ErrorDetail[];
}

export interface Operation {
  id: string;
  kind: string;
  subscriptionId: string;
  location: string;
  targetId: string;
  state: OperationState;
  percentComplete: number;
  statusMessage: string | null;
  input: unknown;
  checkpoint: Record<string, unknown>;
  error: OperationError | null;
  cancelRequested: boolean;
  attempts: number;
  leaseOwner: string | null;
  createdBy: string;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

export interface NewOperation {
  kind: string;
  subscriptionId: string;
  location: string;
  targetId: string;
  input: unknown;
  createdBy: string;
}

/** A claimed operation and the fencing token that proves the claim. */
export interface Lease {
  op: Operation;
  token: number;
}

const toOperation = (r: OperationTable): Operation => ({
  id: r.id,
  kind: r.kind,
  subscriptionId: r.subscription_id,
  location: r.location,
  targetId: r.target_id,
  state: r.state as OperationState,
  percentComplete: r.percent_complete,
  statusMessage: r.status_message,
  input: JSON.parse(r.input),
  checkpoint: JSON.parse(r.checkpoint),
  error: r.error ? JSON.parse(r.error) : null,
  cancelRequested: r.cancel_requested === 1,
  attempts: r.attempts,
  leaseOwner: r.lease_owner,
  createdBy: r.created_by,
  createdAt: r.created_at,
  startedAt: r.started_at,
  endedAt: r.ended_at,
});

const later = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

export class OperationStore {
  private listeners = new Set<() => void>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /** Called after an operation is enqueued, so local workers start at once instead of at their next poll. */
  onEnqueue(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  notify(): void {
    for (const fn of this.listeners) fn();
  }

  /** Inserts a new operation; pass the transaction that makes the change it carries out. */
  async enqueue(db: Db, n: NewOperation): Promise<Operation> {
    const row: OperationTable = {
      id: randomUUID(),
      kind: n.kind,
      subscription_id: n.subscriptionId,
      location: n.location,
      target_id: n.targetId,
      state: 'InProgress',
      percent_complete: 0,
      status_message: 'Queued',
      input: JSON.stringify(n.input ?? {}),
      checkpoint: '{}',
      error: null,
      cancel_requested: 0,
      lease_owner: null,
      lease_expires_at: null,
      lease_token: 0,
      attempts: 0,
      created_by: n.createdBy,
      created_at: nowIso(),
      started_at: null,
      ended_at: null,
    };
    await db.insertInto('operations').values(row).execute();
    return toOperation(row);
  }

  async get(id: string): Promise<Operation | undefined> {
    const row = await this.db.selectFrom('operations').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toOperation(row);
  }

  async list(filter: { subscriptionId: string; createdBy?: string; state?: OperationState }, before: string | undefined, limit: number): Promise<Operation[]> {
    let q = this.db.selectFrom('operations').selectAll().where('subscription_id', '=', filter.subscriptionId);
    if (filter.createdBy) q = q.where('created_by', '=', filter.createdBy);
    if (filter.state) q = q.where('state', '=', filter.state);
    if (before) q = q.where('created_at', '<', before);
    return (await q.orderBy('created_at', 'desc').limit(limit).execute()).map(toOperation);
  }

  /** The unfinished operation working on a resource, if any. */
  async activeFor(db: Db, targetId: string): Promise<Operation | undefined> {
    const row = await db.selectFrom('operations').selectAll().where('target_id', '=', targetId).where('state', '=', 'InProgress').executeTakeFirst();
    return row && toOperation(row);
  }

  /** Asks for cancellation; the worker that holds the operation (or the next to claim it) undoes its work. */
  async requestCancel(id: string): Promise<Operation | undefined> {
    await this.db.updateTable('operations').set({ cancel_requested: 1 }).where('id', '=', id).where('state', '=', 'InProgress').execute();
    this.notify();
    return this.get(id);
  }

  /** Claims the oldest runnable operation of the given kinds: never leased, or whose lease expired. */
  async claim(owner: string, leaseSeconds: number, kinds: string[]): Promise<Lease | undefined> {
    if (kinds.length === 0) return undefined;
    return this.db.transaction().execute(async (tx) => {
      const now = nowIso();
      let q = tx
        .selectFrom('operations')
        .select(['id', 'lease_token'])
        .where('state', '=', 'InProgress')
        .where('kind', 'in', kinds)
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now)]))
        .orderBy('created_at')
        .limit(1);
      // PostgreSQL: row locks let many servers claim side by side. SQLite has a single writer.
      if (this.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const candidate = await q.executeTakeFirst();
      if (!candidate) return undefined;
      const token = candidate.lease_token + 1;
      const res = await tx
        .updateTable('operations')
        .set((eb) => ({
          lease_owner: owner,
          lease_expires_at: later(leaseSeconds),
          lease_token: token,
          attempts: eb('attempts', '+', 1),
          started_at: eb.fn.coalesce('started_at', eb.val(now)),
        }))
        .where('id', '=', candidate.id)
        .where('lease_token', '=', candidate.lease_token)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return undefined;
      const row = await tx.selectFrom('operations').selectAll().where('id', '=', candidate.id).executeTakeFirstOrThrow();
      return { op: toOperation(row), token };
    });
  }

  /** Extends the lease; returns whether cancellation was asked, or undefined when the lease is lost. */
  async renew(lease: Lease, leaseSeconds: number): Promise<{ cancelRequested: boolean } | undefined> {
    const res = await this.db
      .updateTable('operations')
      .set({ lease_expires_at: later(leaseSeconds) })
      .where('id', '=', lease.op.id)
      .where('lease_token', '=', lease.token)
      .where('state', '=', 'InProgress')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return undefined;
    const row = await this.db.selectFrom('operations').select('cancel_requested').where('id', '=', lease.op.id).executeTakeFirst();
    return { cancelRequested: row?.cancel_requested === 1 };
  }

  /** Records progress and the checkpoint; false when the lease was lost. */
  async progress(lease: Lease, percent: number, message: string | null, checkpoint: Record<string, unknown>): Promise<boolean> {
    const res = await this.db
      .updateTable('operations')
      .set({ percent_complete: Math.max(0, Math.min(100, Math.round(percent))), status_message: message, checkpoint: JSON.stringify(checkpoint) })
      .where('id', '=', lease.op.id)
      .where('lease_token', '=', lease.token)
      .where('state', '=', 'InProgress')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Ends the operation; false when the lease was lost. Runs inside `db` so the final resource change commits with it. */
  async finish(db: Db, lease: Lease, state: Exclude<OperationState, 'InProgress'>, error: OperationError | null, message: string): Promise<boolean> {
    const res = await db
      .updateTable('operations')
      .set({
        state,
        error: error ? JSON.stringify(error) : null,
        status_message: message,
        ended_at: nowIso(),
        lease_owner: null,
        lease_expires_at: null,
        ...(state === 'Succeeded' ? { percent_complete: 100 } : {}),
      })
      .where('id', '=', lease.op.id)
      .where('lease_token', '=', lease.token)
      .where('state', '=', 'InProgress')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Gives a claimed operation back without finishing it (clean shutdown): the next worker resumes it at once. */
  async release(lease: Lease): Promise<void> {
    await this.db
      .updateTable('operations')
      .set({ lease_owner: null, lease_expires_at: null })
      .where('id', '=', lease.op.id)
      .where('lease_token', '=', lease.token)
      .execute();
  }
}
