// The durable operation engine: leases, checkpoints, resume after a dead
// worker, fencing of stale workers, cancel and failure, against both stores.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ComputeError } from '../../src/compute/errors.js';
import { openStore, type Store } from '../../src/db/database.js';
import { diskError } from '../../src/diskformat/errors.js';
import { LabforgeError } from '../../src/errors.js';
import { ImageStoreError } from '../../src/imagestore/errors.js';
import { type Operation, OperationStore } from '../../src/operations/operation.store.js';
import { type OperationHandler, OperationWorker } from '../../src/operations/worker.js';
import { createPgDatabase, DIALECTS } from '../helpers/pg.js';
import { until } from '../helpers/wait.js';

const soon = <T>(fn: () => Promise<T | undefined>, ms = 10_000) => until('the condition', ms, fn, 20);

describe.each(DIALECTS)('operations (%s)', (dialect) => {
  let store: Store;
  let ops: OperationStore;
  let cleanup: () => Promise<void>;
  const workers: OperationWorker[] = [];

  beforeEach(async () => {
    if (dialect === 'postgres') {
      const pg = await createPgDatabase();
      store = await openStore({ kind: 'postgres', url: pg.url });
      cleanup = pg.drop;
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'labforge-ops-'));
      store = await openStore({ kind: 'sqlite', file: join(dir, 'ops.db') });
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    }
    ops = new OperationStore(store.db, store.dialect);
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await store.close();
    await cleanup();
  });

  const worker = (handlers: OperationHandler<any>[], leaseSeconds = 30) => {
    const w = new OperationWorker(store.db, ops, { leaseSeconds, pollMilliseconds: 20, concurrency: 4 });
    for (const h of handlers) w.register(h);
    workers.push(w);
    w.start();
    return w;
  };
  const enqueue = (kind: string, input: unknown = {}) =>
    ops.enqueue(store.db, { kind, subscriptionId: 'sub', location: 'site-a', targetId: `/things/${Math.random()}`, input, createdBy: 'tester' });
  const finished = (id: string) => soon(async () => ((await ops.get(id))?.state !== 'InProgress' ? ((await ops.get(id)) as Operation) : undefined));

  it('runs the steps, reports progress and ends Succeeded at 100%', async () => {
    const seen: number[] = [];
    worker([
      {
        kind: 'count',
        run: async (ctx) => {
          for (const n of [1, 2, 3]) {
            await ctx.step(`s${n}`, async () => {
              await ctx.progress(n * 30, `step ${n}`);
              seen.push((await ops.get(ctx.op.id))?.percentComplete as number);
            });
          }
        },
      },
    ]);
    const op = await enqueue('count');
    const done = await finished(op.id);
    expect(done.state).toBe('Succeeded');
    expect(done.percentComplete).toBe(100);
    expect(seen).toEqual([30, 60, 90]);
    expect(done.checkpoint.done).toEqual(['s1', 's2', 's3']);
    expect(done.endedAt).not.toBeNull();
  });

  it('records a failure with its code and message and lets the handler mark the target', async () => {
    let marked = '';
    worker([
      {
        kind: 'boom',
        run: async () => {
          throw new LabforgeError(400, 'DiskTooLarge', 'The disk is larger than allowed.');
        },
        onFailure: async (_ctx, _tx, error) => {
          marked = error.code;
        },
      },
    ]);
    const done = await finished((await enqueue('boom')).id);
    expect(done.state).toBe('Failed');
    expect(done.error).toEqual({ code: 'DiskTooLarge', message: 'The disk is larger than allowed.' });
    expect(marked).toBe('DiskTooLarge');
  });

  it('records an error of a lower layer (image store, disk format, compute) with the same code, message and target', async () => {
    const thrown = [
      new ImageStoreError(
        'ChunkMissing',
        "Chunk 00 is missing from region 'site-a'. Run `labforge store verify --region site-a` to repair it from another region.",
      ),
      diskError('DiskCorrupt', 'The VHD footer checksum is wrong, so the file is damaged or was edited by hand.'),
      new ComputeError('DiskMissing', 'The disk file of VM v is missing on this host, so it cannot start.'),
    ];
    worker(thrown.map((err, i) => ({ kind: `lower-${i}`, run: async () => Promise.reject(err) })));
    for (const [i, err] of thrown.entries()) {
      const done = await finished((await enqueue(`lower-${i}`)).id);
      expect(done.state).toBe('Failed');
      expect(done.error).toEqual({ code: err.code, message: err.message, ...(err.target ? { target: err.target } : {}) });
    }
    expect(thrown[1]?.target).toBe('image');
  });

  it('cancels a running operation and runs its undo', async () => {
    let undone = false;
    let started = false;
    worker(
      [
        {
          kind: 'slow',
          run: async (ctx) => {
            await ctx.step('wait', async () => {
              started = true;
              await sleep(30_000, undefined, { signal: ctx.signal });
            });
          },
          onCancel: async () => {
            undone = true;
          },
        },
      ],
      0.3,
    );
    const op = await enqueue('slow');
    await soon(async () => (started ? true : undefined));
    await ops.requestCancel(op.id);
    const done = await finished(op.id);
    expect(done.state).toBe('Canceled');
    expect(done.error?.code).toBe('OperationCanceled');
    expect(undone).toBe(true);
  });

  it('cancels a queued operation before any step runs', async () => {
    const op = await enqueue('never');
    await ops.requestCancel(op.id);
    let ran = false;
    worker([
      {
        kind: 'never',
        run: async () => {
          ran = true;
        },
      },
    ]);
    expect((await finished(op.id)).state).toBe('Canceled');
    expect(ran).toBe(false);
  });

  it("resumes an operation whose worker died, skipping the steps it finished, and fences the dead worker's writes", async () => {
    const op = await enqueue('resume');
    // A worker claims it, finishes step "a", then dies (its lease is never renewed).
    const dead = await ops.claim('dead-worker', 0.5, ['resume']);
    expect(dead?.op.id).toBe(op.id);
    expect(await ops.progress(dead!, 40, 'a done', { done: ['a'] })).toBe(true);
    const runs: string[] = [];
    worker([
      {
        kind: 'resume',
        run: async (ctx) => {
          await ctx.step('a', async () => {
            runs.push('a');
          });
          await ctx.step('b', async () => {
            runs.push('b');
          });
        },
      },
    ]);
    const done = await finished(op.id);
    expect(done.state).toBe('Succeeded');
    expect(runs).toEqual(['b']);
    expect(done.attempts).toBe(2);
    // The dead worker comes back: every write it tries is refused.
    expect(await ops.progress(dead!, 99, 'stale', {})).toBe(false);
    expect(await ops.finish(store.db, dead!, 'Failed', { code: 'X', message: 'stale' }, 'Failed')).toBe(false);
    expect((await ops.get(op.id))?.state).toBe('Succeeded');
  });

  it('never runs an operation twice when two workers compete', async () => {
    const counts = new Map<string, number>();
    const handler: OperationHandler = {
      kind: 'once',
      run: async (ctx) => {
        counts.set(ctx.op.id, (counts.get(ctx.op.id) ?? 0) + 1);
        await sleep(5);
      },
    };
    const queued = await Promise.all(Array.from({ length: 12 }, () => enqueue('once')));
    worker([handler]);
    worker([handler]);
    for (const q of queued) expect((await finished(q.id)).state).toBe('Succeeded');
    expect([...counts.values()]).toEqual(Array(12).fill(1));
  });

  it('abandons an operation that crashed its workers too many times', async () => {
    const op = await enqueue('poison');
    for (let i = 0; i < 5; i++) {
      const l = await soon(() => ops.claim(`crasher-${i}`, 0.05, ['poison']));
      expect(l.op.id).toBe(op.id);
      await sleep(80);
    }
    let ran = false;
    worker([
      {
        kind: 'poison',
        run: async () => {
          ran = true;
        },
      },
    ]);
    const done = await finished(op.id);
    expect(done.state).toBe('Failed');
    expect(done.error?.code).toBe('OperationAbandoned');
    expect(ran).toBe(false);
  });
});
