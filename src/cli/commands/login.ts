// `labforge login`, `logout` and `whoami`: connect the command-line tool to a
// server once, so later commands need no server, token or CA options.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ApiError } from '../../client/api-client.js';
import { effectiveLogin, removeStoredLogin, writeStoredLogin } from '../config-store.js';
import { loadContext, makeClient } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { type OutputOptions, printFields, printJson, withOutput } from '../output.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** A password from a file ('-': standard input) or LABFORGE_PASSWORD; never from the command line. */
export async function readPassword(file: string | undefined): Promise<string> {
  const pw = file === '-' ? await readStdin() : file ? readFileSync(file, 'utf8') : process.env.LABFORGE_PASSWORD;
  if (!pw?.trim()) throw new CliError('Give the password with --password-file FILE (or - for standard input), or set LABFORGE_PASSWORD.', EXIT.usage);
  return pw.replace(/\r?\n$/, '');
}

interface LoginOptions extends OutputOptions {
  server?: string;
  email?: string;
  passwordFile?: string;
  token?: string;
  tokenStdin?: boolean;
  caFile?: string;
  subscription?: string;
}

export function registerLogin(program: Command): void {
  withOutput(
    program
      .command('login')
      .description('Log the command-line tool in to a labforge server and remember it for later commands')
      .option('--server <url>', 'server address, e.g. https://labforge.example.edu:8443 (default: LABFORGE_SERVER)')
      .option('--email <email>', 'sign in as a person with email and password (instead of an API token)')
      .option('--password-file <file>', "with --email: file holding the password ('-' for standard input); or LABFORGE_PASSWORD")
      .option('--token <token>', 'API token (visible in shell history and process lists; prefer --token-stdin)')
      .option('--token-stdin', 'read the token from standard input, e.g. `labforge login --server URL --token-stdin < token.txt`')
      .option('--ca-file <pem>', "CA certificate to trust, for a server using labforge's own CA (labforge serve prints its path)")
      .option('--subscription <id>', 'subscription to work in (default: the first one the server lists)')
      .addHelpText(
        'after',
        '\nThe login is stored in $XDG_CONFIG_HOME/labforge/config.json (default ~/.config/labforge/config.json; LABFORGE_CONFIG_DIR\nchanges the folder), readable only by you. LABFORGE_SERVER, LABFORGE_TOKEN and LABFORGE_CA_FILE override it for one command.',
      ),
  ).action(async (opts: LoginOptions) => {
    const server = (opts.server ?? process.env.LABFORGE_SERVER)?.replace(/\/+$/, '');
    if (!server) throw new CliError('Give the server address with --server https://HOST:PORT.', EXIT.usage);
    if (opts.token && opts.tokenStdin) throw new CliError('Give the token either with --token or with --token-stdin, not both.', EXIT.usage);
    const caFileEarly = opts.caFile ? resolve(opts.caFile) : process.env.LABFORGE_CA_FILE;
    const token = opts.email
      ? (
          await makeClient(server, undefined, caFileEarly)
            .signIn(opts.email, await readPassword(opts.passwordFile))
            .catch((err) => {
              if (err instanceof ApiError && (err.status === 401 || err.status === 429)) throw new CliError(err.message, EXIT.auth);
              throw err;
            })
        ).token
      : (opts.tokenStdin ? await readStdin() : (opts.token ?? process.env.LABFORGE_TOKEN))?.trim();
    if (!token) {
      throw new CliError(
        opts.tokenStdin
          ? 'Standard input was empty; pipe the token in.'
          : 'Give the token with --token TOKEN or --token-stdin (an admin creates tokens with `labforge token create`).',
        EXIT.usage,
      );
    }
    const caFile = opts.caFile ? resolve(opts.caFile) : process.env.LABFORGE_CA_FILE;
    if (caFile && !existsSync(caFile)) throw new CliError(`The CA file ${caFile} does not exist.`, EXIT.usage);
    const client = makeClient(server, token, caFile);
    let me: Awaited<ReturnType<typeof client.whoami>>;
    try {
      me = await client.whoami();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw new CliError(`${server} refused the token: ${err.message} (${err.code}, HTTP 401)`, EXIT.auth);
      throw err;
    }
    const subs = await client.listSubscriptions();
    let subscription = opts.subscription ?? subs[0]?.subscriptionId;
    if (opts.subscription) {
      const found = subs.find((s) => s.subscriptionId.toLowerCase() === opts.subscription?.toLowerCase());
      if (!found) {
        throw new CliError(
          `Subscription '${opts.subscription}' is not on ${server}. Available: ${subs.map((s) => s.subscriptionId).join(', ') || 'none'}.`,
          EXIT.notFound,
        );
      }
      subscription = found.subscriptionId;
    }
    if (!subscription) throw new CliError(`${server} lists no subscription this token may use.`, EXIT.notFound);
    const file = writeStoredLogin({ server, token, ...(caFile ? { caFile } : {}), subscription });
    if (opts.output === 'json') {
      printJson({ server, subject: me.subject, role: me.role, tokenId: me.tokenId, subscription, configFile: file });
      return;
    }
    process.stdout.write(`Logged in to ${server} as ${me.subject} (role ${me.role}).\nSubscription: ${subscription}\nSettings saved in ${file}\n`);
  });

  program
    .command('logout')
    .description('Forget the stored login (the token itself stays valid; revoke it with `labforge token revoke`)')
    .action(() => {
      const file = removeStoredLogin();
      process.stdout.write(file ? `Logged out; removed ${file}.\n` : 'Not logged in; there was nothing to remove.\n');
    });

  withOutput(program.command('whoami').description('Show the server, user and role this tool is logged in as')).action(async (opts: OutputOptions) => {
    const ctx = loadContext();
    const me = await ctx.client.whoami();
    const subscription = await ctx.subscription();
    const login = effectiveLogin();
    if (opts.output === 'json') {
      printJson({ server: ctx.server, ...me, subscription });
      return;
    }
    printFields([
      ['Server', ctx.server],
      ['Subject', me.subject],
      ['Role', me.role],
      ['Token id', me.tokenId],
      ['Subscription', subscription],
      ['CA file', login.caFile],
      ['Settings', login.file],
    ]);
  });
}
