// Exit codes and error messages of the client commands: scripts rely on the
// numbers, people read the one-line message (never a stack trace).
import { CommanderError } from 'commander';
import { ApiError, ConnectionError } from '../client/api-client.js';

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  auth: 3,
  forbidden: 4,
  notFound: 5,
  conflict: 6,
  invalid: 7,
  operationFailed: 8,
  unreachable: 9,
} as const;

export const EXIT_CODES_HELP = `
Exit codes (for scripts):
  0  success
  1  other failure
  2  usage error (unknown command, missing or invalid option)
  3  not logged in, or the token was refused (HTTP 401)
  4  forbidden: the token's role may not do this (HTTP 403)
  5  not found (HTTP 404)
  6  conflict or precondition failed, e.g. already exists or not empty (HTTP 409/412)
  7  invalid request (HTTP 400)
  8  the operation failed, was canceled or did not finish in time
  9  server unreachable, or its TLS certificate is not trusted`;

/** A refusal found by the command itself, with the exit code to end with. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
  }
}

export function exitCodeForStatus(status: number): number {
  if (status === 401) return EXIT.auth;
  if (status === 403) return EXIT.forbidden;
  if (status === 404) return EXIT.notFound;
  if (status === 409 || status === 412) return EXIT.conflict;
  if (status === 400 || status === 413 || status === 415 || status === 422) return EXIT.invalid;
  return EXIT.failure;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof ApiError) return exitCodeForStatus(err.status);
  if (err instanceof ConnectionError) return EXIT.unreachable;
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  return EXIT.failure;
}

/** One readable line (plus details from the server when it gave several). */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    const lines = [`${err.message} (${err.code}, HTTP ${err.status})`];
    // Validation errors list every problem in details; the message already joins them, so only show extra ones.
    for (const d of err.details ?? []) if (!err.message.includes(d.message)) lines.push(`  - ${d.target ? `${d.target}: ` : ''}${d.message} (${d.code})`);
    if (err.status >= 500 && err.requestId) lines.push(`  request id: ${err.requestId}`);
    return lines.join('\n');
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

export function reportError(err: unknown): number {
  process.stderr.write(`labforge: ${describeError(err)}\n`);
  return exitCodeFor(err);
}
