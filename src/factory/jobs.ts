// Runs the factory's jobs: never more than `limit` at once, each retried a
// bounded number of times when it fails for a reason that may pass (a guest
// that did not finish, a server that was briefly away), never when the
// server refused the request itself.
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError } from '../client/api-client.js';

export interface JobOutcome {
  status: 'Succeeded' | 'Failed';
  attempts: number;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  error?: string;
}

export interface PoolOptions {
  limit: number;
  /** Extra attempts after the first failure (0: no retry). */
  retries: number;
  /** Wait before attempt n+1: n × this. */
  retryDelayMs: number;
  onRetry?: (index: number, attempt: number, err: Error) => void;
}

/** A refusal by the server (bad request, forbidden, not found, conflict) does not change by retrying. */
export function isPermanent(err: unknown): boolean {
  return err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
}

/** Runs `run(item)` for every item with at most `limit` running at once; returns one outcome per item, in order. */
export async function runJobs<T>(items: readonly T[], opts: PoolOptions, run: (item: T, attempt: number) => Promise<void>): Promise<JobOutcome[]> {
  const out: JobOutcome[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      const item = items[i] as T;
      const started = Date.now();
      let attempt = 0;
      for (;;) {
        attempt++;
        try {
          await run(item, attempt);
          out[i] = outcome('Succeeded', attempt, started);
          break;
        } catch (err) {
          const e = err instanceof Error ? err : new Error(String(err));
          if (attempt > opts.retries || isPermanent(e)) {
            out[i] = { ...outcome('Failed', attempt, started), error: e.message };
            break;
          }
          opts.onRetry?.(i, attempt, e);
          await sleep(opts.retryDelayMs * attempt);
        }
      }
    }
  };
  const limit = Math.max(1, Math.min(opts.limit, items.length));
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

function outcome(status: JobOutcome['status'], attempts: number, started: number): JobOutcome {
  const finished = Date.now();
  return {
    status,
    attempts,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    seconds: Math.round((finished - started) / 100) / 10,
  };
}
