// Runs durable operations. A worker claims an operation with a lease, renews
// the lease while it works, and runs the handler's steps; each finished step
// is checkpointed, so a worker that resumes after a crash skips what was done.
// Steps must be idempotent: a step that crashed half-way runs again.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { DomainError } from '../lib/errors.js';
import { exhaustionMessage, exhaustionOf } from '../lib/exhaustion.js';
import { WorkerError } from './errors.js';
import type { Lease, Operation, OperationError, OperationStore } from './operation.store.js';

export interface OperationContext<I = unknown> {
  readonly op: Operation;
  readonly input: I;
  /** Free-form resume state, saved with every progress report. */
  readonly checkpoint: Record<string, unknown>;
  /** Aborted when the operation is canceled or this worker lost its lease. */
  readonly signal: AbortSignal;
  progress(percent: number, message?: string): Promise<void>;
  /** Runs `fn` unless a previous attempt already finished the step of this name. */
  step(name: string, fn: () => Promise<void>): Promise<void>;
  /** Runs `fn` in a transaction that also ends the operation as Succeeded: the result and the status commit together. */
  complete(message: string, fn?: (tx: Transaction<Database>) => Promise<void>): Promise<void>;
  throwIfCanceled(): void;
}

export interface OperationHandler<I = unknown> {
  kind: string;
  run(ctx: OperationContext<I>): Promise<void>;
  /** Undoes the operation's work after a cancel; runs in the transaction that marks it Canceled. */
  onCancel?(ctx: OperationContext<I>, tx: Transaction<Database>): Promise<void>;
  /** Records the failure on the target resource; runs in the transaction that marks the operation Failed. */
  onFailure?(ctx: OperationContext<I>, tx: Transaction<Database>, error: OperationError): Promise<void>;
}

export interface WorkerOptions {
  leaseSeconds: number;
  pollMilliseconds: number;
  concurrency: number;
  /** Give up on an operation that crashed its workers this many times. */
  maxAttempts?: number;
  /** Fault injection for crash tests: pause after every step. */
  stepDelayMs?: number;
}

class LeaseLost extends Error {}
class Canceled extends Error {}

export class OperationWorker {
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly handlers = new Map<string, OperationHandler<never>>();
  private readonly running = new Map<string, { lease: Lease; abort: AbortController }>();
  private stopped = true;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly store: OperationStore,
    private readonly opts: WorkerOptions,
  ) {}

  register<I>(handler: OperationHandler<I>): void {
    this.handlers.set(handler.kind, handler as OperationHandler<never>);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.store.onEnqueue(() => this.wake());
    this.loop = this.run();
  }

  wake(): void {
    this.wakeUp?.();
  }

  /** Stops claiming, interrupts running operations and hands them back so another worker resumes them. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.wake();
    for (const r of this.running.values()) r.abort.abort(new LeaseLost('worker stopping'));
    await this.loop;
    const deadline = Date.now() + 5000;
    while (this.running.size > 0 && Date.now() < deadline) await sleep(20);
  }

  /** Waits until no operation is running or queued for this worker (tests and CLI one-shots). */
  get busy(): number {
    return this.running.size;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let claimed = false;
      if (this.running.size < this.opts.concurrency) {
        try {
          const lease = await this.store.claim(this.owner, this.opts.leaseSeconds, [...this.handlers.keys()]);
          if (lease) {
            claimed = true;
            this.execute(lease);
          }
        } catch (err) {
          console.error(`operations: claiming work failed, retrying: ${(err as Error).message}`);
        }
      }
      if (!claimed) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.opts.pollMilliseconds);
          this.wakeUp = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wakeUp = undefined;
      }
    }
  }

  private execute(lease: Lease): void {
    const abort = new AbortController();
    this.running.set(lease.op.id, { lease, abort });
    this.process(lease, abort)
      .catch((err) => console.error(`operations: ${lease.op.kind} ${lease.op.id} crashed the worker: ${(err as Error).stack}`))
      .finally(() => {
        this.running.delete(lease.op.id);
        this.wake();
      });
  }

  private async process(lease: Lease, abort: AbortController): Promise<void> {
    const handler = this.handlers.get(lease.op.kind) as OperationHandler<unknown>;
    const { op } = lease;
    const checkpoint: Record<string, unknown> = { ...op.checkpoint };
    const done = new Set<string>((checkpoint.done as string[] | undefined) ?? []);
    let percent = op.percentComplete;
    let message: string | null = op.statusMessage;
    const store = this.store;
    const fenced = async (ok: boolean) => {
      if (!ok) throw new LeaseLost('lease lost');
    };

    const heartbeat = setInterval(
      () => {
        store
          .renew(lease, this.opts.leaseSeconds)
          .then((r) => {
            if (!r) abort.abort(new LeaseLost('lease lost'));
            else if (r.cancelRequested) abort.abort(new Canceled('canceled'));
          })
          .catch(() => undefined);
      },
      Math.max(100, (this.opts.leaseSeconds * 1000) / 3),
    );

    const ctx: OperationContext<unknown> = {
      op,
      input: op.input,
      checkpoint,
      signal: abort.signal,
      throwIfCanceled: () => {
        if (abort.signal.aborted) throw abort.signal.reason;
      },
      progress: async (p, m) => {
        percent = p;
        if (m !== undefined) message = m;
        await fenced(await store.progress(lease, percent, message, checkpoint));
      },
      step: async (name, fn) => {
        ctx.throwIfCanceled();
        if (done.has(name)) return;
        await fn();
        done.add(name);
        checkpoint.done = [...done];
        await fenced(await store.progress(lease, percent, message, checkpoint));
        if (this.opts.stepDelayMs) await sleep(this.opts.stepDelayMs, undefined, { signal: abort.signal }).catch(() => undefined);
        ctx.throwIfCanceled();
      },
      complete: async (msg, fn) => {
        ctx.throwIfCanceled();
        await this.db.transaction().execute(async (tx) => {
          await fn?.(tx);
          await fenced(await store.finish(tx, lease, 'Succeeded', null, msg));
        });
      },
    };

    try {
      if (op.cancelRequested) throw new Canceled('canceled');
      if (op.attempts > (this.opts.maxAttempts ?? 5)) {
        throw new WorkerError(
          'OperationAbandoned',
          `The operation was interrupted ${op.attempts - 1} times (the server stopped while running it) and was abandoned. Retry the request; if it fails again, check the server log.`,
        );
      }
      await handler.run(ctx);
      const current = await store.get(op.id);
      if (current?.state === 'InProgress') await ctx.complete('Succeeded');
    } catch (err) {
      const reason = abort.signal.aborted ? abort.signal.reason : err;
      if (reason instanceof LeaseLost) {
        if (this.stopped) await store.release(lease).catch(() => undefined);
        return;
      }
      if (reason instanceof Canceled || (op.cancelRequested && !(err instanceof DomainError))) {
        await this.db.transaction().execute(async (tx) => {
          await handler.onCancel?.(ctx, tx);
          await store.finish(
            tx,
            lease,
            'Canceled',
            { code: 'OperationCanceled', message: 'The operation was canceled at your request; its partial work was undone.' },
            'Canceled',
          );
        });
        return;
      }
      const exhausted = err instanceof DomainError ? undefined : exhaustionOf(err);
      const error: OperationError =
        err instanceof DomainError
          ? err.toJSON()
          : exhausted
            ? {
                code: exhausted,
                message: await exhaustionMessage(exhausted, `Operation ${op.kind} could not go on`, (err as { path?: string }).path ?? 'the server'),
              }
            : {
                code: 'InternalError',
                message: `The operation failed unexpectedly: ${(err as Error).message}. Retry; if it happens again, report it with the operation id ${op.id}.`,
              };
      if (!(err instanceof DomainError)) console.error(`operations: ${op.kind} ${op.id} failed: ${(err as Error).stack}`);
      await this.db.transaction().execute(async (tx) => {
        await handler.onFailure?.(ctx, tx, error);
        await store.finish(tx, lease, 'Failed', error, 'Failed');
      });
    } finally {
      clearInterval(heartbeat);
    }
  }
}
