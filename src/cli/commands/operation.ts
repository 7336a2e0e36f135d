// `labforge operation …`: follow long-running work (image version creation,
// replication) that the server runs in the background.
import { type Command, InvalidArgumentError } from 'commander';
import { ApiError, ConnectionError, parseOperationRef } from '../../client/api-client.js';
import type { Operation, OperationStatus } from '../../contract/index.js';
import { type Context, loadContext } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { type OutputOptions, printFields, printJson, printTable, shortTime, withOutput } from '../output.js';
import { parseWholeNumber } from './token.js';

const STATES: readonly OperationStatus[] = ['InProgress', 'Succeeded', 'Failed', 'Canceled'];
// Polling gives up only after this many failed polls in a row: a server restart should not end a long wait.
const MAX_POLL_ERRORS = 5;

function parseState(v: string): OperationStatus {
  const s = STATES.find((x) => x.toLowerCase() === v.toLowerCase());
  if (!s) throw new InvalidArgumentError(`Use one of: ${STATES.join(', ')}.`);
  return s;
}

function parseSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('Give a number of seconds greater than 0.');
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function resolveRef(ctx: Context, ref: string): Promise<{ sub: string; id: string }> {
  const parsed = parseOperationRef(ref);
  return { sub: parsed.subscription ?? (await ctx.subscription()), id: parsed.id };
}

function printOperation(op: Operation): void {
  printFields([
    ['Operation', op.name],
    ['Kind', op.properties.kind],
    ['Status', op.status],
    ['Progress', op.percentComplete !== undefined ? `${op.percentComplete}%` : undefined],
    ['Message', op.properties.statusMessage],
    ['Resource', op.properties.resourceId],
    ['Started', shortTime(op.startTime)],
    ['Ended', shortTime(op.endTime)],
    ['Started by', op.properties.createdBy],
    ['Error', op.error ? `${op.error.message} (${op.error.code})` : undefined],
  ]);
}

/** The error to end with when an operation did not succeed. */
export function notSucceeded(op: Operation): CliError {
  const what = `Operation ${op.name}${op.properties.kind ? ` (${op.properties.kind})` : ''}`;
  if (op.status === 'Canceled') return new CliError(`${what} was canceled${op.error ? `: ${op.error.message} (${op.error.code})` : '.'}`, EXIT.operationFailed);
  return new CliError(
    `${what} failed: ${op.error ? `${op.error.message} (${op.error.code})` : op.properties.statusMessage || 'the server gave no reason.'}`,
    EXIT.operationFailed,
  );
}

// The status message often just repeats the status ("Succeeded"); show it only when it says more.
const detail = (op: Operation) => (op.properties.statusMessage && op.properties.statusMessage !== op.status ? op.properties.statusMessage : '');

/** Shows progress: a bar on a terminal, one line per change otherwise (logs, CI). */
async function progressReporter(id: string) {
  if (process.stderr.isTTY) {
    // Loaded only for a terminal, keeping the start of every other command quick.
    const { default: cliProgress } = await import('cli-progress');
    const bar = new cliProgress.SingleBar(
      { format: ' {bar} {percentage}% | {status} {message}', stream: process.stderr, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    bar.start(100, 0, { status: 'InProgress', message: '' });
    return {
      update: (op: Operation) => bar.update(op.percentComplete ?? 0, { status: op.status, message: detail(op) }),
      stop: () => bar.stop(),
    };
  }
  let last = '';
  return {
    update: (op: Operation) => {
      const line = `Operation ${id}: ${op.percentComplete ?? 0}% ${op.status}${detail(op) ? ` - ${detail(op)}` : ''}`;
      if (line !== last) process.stderr.write(`${line}\n`);
      last = line;
    },
    stop: () => {},
  };
}

/**
 * Polls an operation until it ends, showing progress on stderr, and returns its
 * last status (whatever it is). Throws CliError (exit 8) when `timeout` seconds
 * pass first; Ctrl+C stops waiting (exit 130) and leaves the operation running.
 */
export async function waitForOperation(ctx: Context, sub: string, id: string, opts: { timeout?: number } = {}): Promise<Operation> {
  const deadline = opts.timeout !== undefined ? Date.now() + opts.timeout * 1000 : Number.POSITIVE_INFINITY;
  const progress = await progressReporter(id);
  // Ctrl+C ends the wait, not the operation; restore the cursor the bar hid.
  const onInterrupt = () => {
    progress.stop();
    process.stderr.write(`\nlabforge: stopped waiting; operation ${id} continues on the server (\`labforge operation wait ${id}\` resumes).\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  let op: Operation | undefined;
  try {
    let errors = 0;
    for (;;) {
      let retryAfter: number | undefined;
      try {
        const r = await ctx.client.getOperationWithRetry(sub, id);
        op = r.operation;
        retryAfter = r.retryAfterSeconds;
        errors = 0;
      } catch (err) {
        const transient = err instanceof ConnectionError || (err instanceof ApiError && err.status >= 500);
        if (!transient || ++errors >= MAX_POLL_ERRORS) throw err;
      }
      if (op) progress.update(op);
      if (op && op.status !== 'InProgress') break;
      const left = deadline - Date.now();
      if (left <= 0) {
        const state = op ? ` (${op.percentComplete ?? 0}%${op.properties.statusMessage ? `, ${op.properties.statusMessage}` : ''})` : '';
        throw new CliError(
          `Operation ${id} is still running after ${opts.timeout} s${state}. It continues on the server; wait again with \`labforge operation wait ${id}\`.`,
          EXIT.operationFailed,
        );
      }
      const interval = Math.min(Math.max((retryAfter ?? 1) * 1000, 250), 5000);
      await sleep(Math.min(interval, left));
    }
  } finally {
    progress.stop();
    process.removeListener('SIGINT', onInterrupt);
  }
  if (!op) throw new CliError(`Operation ${id} returned no status.`);
  return op;
}

/** Follows the operation a write started: waits (exit 8 when it fails) or, with --no-wait, prints its id. Returns true when it waited. */
export async function followOperation(ctx: Context, operationUrl: string | undefined, opts: OutputOptions & { wait: boolean }, what: string): Promise<boolean> {
  if (!operationUrl) return false;
  const ref = parseOperationRef(new URL(operationUrl, ctx.server).pathname);
  const sub = ref.subscription ?? (await ctx.subscription());
  if (!opts.wait) {
    if (opts.output === 'json') printJson({ operationId: ref.id, operationUrl });
    else process.stdout.write(`${what} started as operation ${ref.id}; follow it with \`labforge operation wait ${ref.id}\`.\n`);
    return false;
  }
  const op = await waitForOperation(ctx, sub, ref.id);
  if (op.status !== 'Succeeded') throw notSucceeded(op);
  return true;
}

export function registerOperation(program: Command): void {
  const operation = program.command('operation').description('Show, list and wait for long-running operations');
  const refHelp = 'operation id, as printed when the work started (the Azure-AsyncOperation URL works too)';

  withOutput(operation.command('show').argument('<id>', refHelp).description('Show the status of an operation')).action(
    async (ref: string, opts: OutputOptions) => {
      const ctx = loadContext();
      const { sub, id } = await resolveRef(ctx, ref);
      const op = await ctx.client.getOperation(sub, id);
      if (opts.output === 'json') return printJson(op);
      printOperation(op);
    },
  );

  withOutput(
    operation
      .command('wait')
      .argument('<id>', refHelp)
      .description('Wait until an operation ends; exit 0 when it succeeded, 8 when it failed, was canceled or timed out')
      .option('--timeout <seconds>', 'give up waiting after this many seconds (the operation keeps running on the server)', parseSeconds),
  ).action(async (ref: string, opts: OutputOptions & { timeout?: number }) => {
    const ctx = loadContext();
    const { sub, id } = await resolveRef(ctx, ref);
    const op = await waitForOperation(ctx, sub, id, { timeout: opts.timeout });
    if (opts.output === 'json') printJson(op);
    if (op.status !== 'Succeeded') throw notSucceeded(op);
    if (opts.output !== 'json') process.stdout.write(`Operation ${op.name} succeeded${op.properties.resourceId ? `: ${op.properties.resourceId}` : '.'}\n`);
  });

  withOutput(
    operation
      .command('list')
      .description('List recent operations, newest first (admins see everyone’s, others their own)')
      .option('--state <state>', `only operations in this state: ${STATES.join(', ')}`, parseState)
      .option('--top <n>', 'how many to show (default 20)', parseWholeNumber, 20),
  ).action(async (opts: OutputOptions & { state?: OperationStatus; top: number }) => {
    const ctx = loadContext();
    const list = await ctx.client.listOperations(await ctx.subscription(), { state: opts.state, top: Math.max(1, Math.min(1000, opts.top)) });
    if (opts.output === 'json') return printJson(list);
    printTable(
      ['ID', 'KIND', 'STATUS', 'PROGRESS', 'STARTED', 'BY', 'RESOURCE'],
      list.map((o) => [
        o.name,
        o.properties.kind,
        o.status,
        `${o.percentComplete ?? 0}%`,
        shortTime(o.startTime),
        o.properties.createdBy,
        o.properties.resourceId?.replace(/^\/subscriptions\/[^/]+\/resourceGroups\//i, ''),
      ]),
      'No operations.',
    );
  });
}
