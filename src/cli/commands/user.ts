// `labforge user …` (people's accounts, admins) and `labforge register` (a
// person chooses their password with an invitation or a lab's code).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { writeStoredLogin } from '../config-store.js';
import { loadContext, makeClient } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { type OutputOptions, printJson, printTable, say, shortTime, withOutput } from '../output.js';
import { readPassword } from './login.js';

export function registerUser(program: Command): void {
  const user = program.command('user').description("People's accounts: they sign in with email and password (admins manage them)");

  withOutput(
    user
      .command('create')
      .argument('<email>', "the person's email address")
      .description('Create an account; without --password-file the person gets a one-time invitation to choose their password')
      .requiredOption('--role <role>', 'admin, creator (educators) or user (students)')
      .option('--name <name>', 'display name')
      .option('--password-file <file>', "set the password now from this file ('-' for standard input)"),
  ).action(async (email: string, opts: OutputOptions & { role: string; name?: string; passwordFile?: string }) => {
    const ctx = loadContext();
    const password = opts.passwordFile ? await readPassword(opts.passwordFile) : undefined;
    const a = await ctx.client.putAccount(email, { role: opts.role, ...(opts.name ? { displayName: opts.name } : {}), ...(password ? { password } : {}) });
    if (opts.output === 'json') return printJson(a);
    if (a.invitation) {
      process.stdout.write(
        `Created account ${a.properties.email} (role ${a.properties.role}). Send them this invitation (valid until ${shortTime(a.invitation.expiresAt)}); it is shown once:\n\n  ${a.invitation.token}\n\nThey choose a password with:\n  labforge register --server ${ctx.server} --email ${a.properties.email} --invitation ${a.invitation.token}\n`,
      );
    } else say(opts, `Account ${a.properties.email} (role ${a.properties.role}) is ready; they sign in with \`labforge login --email\`.`);
  });

  withOutput(user.command('list').description("List people's accounts")).action(async (opts: OutputOptions) => {
    const ctx = loadContext();
    const accounts = await ctx.client.listAccounts();
    if (opts.output === 'json') return printJson(accounts);
    printTable(
      ['EMAIL', 'NAME', 'ROLE', 'STATE', 'LAST SIGN-IN'],
      accounts.map((a) => [a.properties.email, a.properties.displayName, a.properties.role, a.properties.state, shortTime(a.properties.lastSignInAt)]),
      'No accounts yet. Create one with `labforge user create EMAIL --role creator`.',
    );
  });

  withOutput(user.command('delete').argument('<email>', 'email address').description('Delete an account and end its sessions')).action(
    async (email: string, opts: OutputOptions) => {
      const ctx = loadContext();
      say(opts, (await ctx.client.deleteAccount(email)) ? `Deleted account ${email}; its sessions are ended.` : `There was no account ${email}.`);
    },
  );

  withOutput(
    program
      .command('register')
      .description("Choose your password with the invitation an admin sent you, or (students) your lab's registration code, and log in")
      .requiredOption('--server <url>', 'server address, e.g. https://labforge.example.edu:8443')
      .requiredOption('--email <email>', 'your email address')
      .option('--invitation <token>', 'the invitation an admin gave you')
      .option('--code <code>', "your lab's registration code (from your teacher)")
      .option('--password-file <file>', "file holding the password you choose ('-' for standard input); or LABFORGE_PASSWORD")
      .option('--ca-file <pem>', "CA certificate to trust, for a server using labforge's own CA"),
  ).action(async (opts: OutputOptions & { server: string; email: string; invitation?: string; code?: string; passwordFile?: string; caFile?: string }) => {
    if (!opts.invitation === !opts.code) throw new CliError('Give either --invitation or --code.', EXIT.usage);
    const caFile = opts.caFile ? resolve(opts.caFile) : process.env.LABFORGE_CA_FILE;
    if (caFile && !existsSync(caFile)) throw new CliError(`The CA file ${caFile} does not exist.`, EXIT.usage);
    const server = opts.server.replace(/\/+$/, '');
    const client = makeClient(server, undefined, caFile);
    const s = await client.register({
      email: opts.email,
      password: await readPassword(opts.passwordFile),
      ...(opts.invitation ? { invitation: opts.invitation } : {}),
      ...(opts.code ? { registrationCode: opts.code } : {}),
    });
    const subs = await makeClient(server, s.token, caFile).listSubscriptions();
    const file = writeStoredLogin({ server, token: s.token, ...(caFile ? { caFile } : {}), ...(subs[0] ? { subscription: subs[0].subscriptionId } : {}) });
    if (opts.output === 'json') return printJson({ server, subject: s.subject, role: s.role, expiresAt: s.expiresAt, configFile: file });
    process.stdout.write(`Registered ${s.subject} (role ${s.role}) and logged in to ${server} until ${shortTime(s.expiresAt)}.\n`);
  });
}
