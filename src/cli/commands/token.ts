// `labforge token …`: make a token offline for automated setups, and manage
// the API tokens of a server (admins only).
import { type Command, InvalidArgumentError } from 'commander';
import { ROLES, type Role, type Token } from '../../contract/index.js';
import { loadContext } from '../context.js';
import { type OutputOptions, printJson, printTable, shortTime, withOutput } from '../output.js';

function parseRole(v: string): Role {
  const r = ROLES.find((x) => x === v.toLowerCase());
  if (!r) throw new InvalidArgumentError(`Use one of: ${ROLES.join(', ')}.`);
  return r;
}

export function parseWholeNumber(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('Give a whole number.');
  return n;
}

const tokenRow = (t: Token) => [
  t.name,
  t.properties.displayName,
  t.properties.subject,
  t.properties.role,
  t.properties.state,
  shortTime(t.properties.createdAt),
  shortTime(t.properties.expiresAt) ?? 'never',
  shortTime(t.properties.lastUsedAt),
];
const TOKEN_HEADERS = ['ID', 'NAME', 'SUBJECT', 'ROLE', 'STATE', 'CREATED', 'EXPIRES', 'LAST USED'];

export function registerToken(program: Command): void {
  const token = program.command('token').description('Generate, create, list and revoke API tokens');

  withOutput(
    token
      .command('generate')
      .description('Print a new random token without contacting a server, e.g. for LABFORGE_ADMIN_TOKEN of a new installation')
      .addHelpText('after', '\nExample: LABFORGE_ADMIN_TOKEN=$(labforge token generate) labforge serve'),
  ).action(async (opts: OutputOptions) => {
    // Loaded on demand: the service module pulls in the database layer, which other commands do not need.
    const { TokenService } = await import('../../services/token.service.js');
    const { id, token: value } = TokenService.generate();
    if (opts.output === 'json') printJson({ id, token: value });
    else process.stdout.write(`${value}\n`);
  });

  withOutput(
    token
      .command('create')
      .description('Create an API token on the server (admins only); the secret is shown once')
      .requiredOption('--name <name>', 'a name to recognise the token later, e.g. "ci-pipeline" or "teacher-smith"')
      .requiredOption('--role <role>', 'admin (everything), creator (read galleries and images) or user', parseRole)
      .option('--subject <subject>', 'who uses it, shown in audit fields (default: the name)')
      .option('--expires-in-days <days>', 'days until the token stops working (1-3650; default: never)', parseWholeNumber),
  ).action(async (opts: OutputOptions & { name: string; role: Role; subject?: string; expiresInDays?: number }) => {
    const ctx = loadContext();
    const created = await ctx.client.createToken({
      name: opts.name,
      role: opts.role,
      ...(opts.subject ? { subject: opts.subject } : {}),
      ...(opts.expiresInDays !== undefined ? { expiresInDays: opts.expiresInDays } : {}),
    });
    if (opts.output === 'json') {
      printJson(created);
      return;
    }
    const p = created.properties;
    process.stdout.write(
      [
        `Token '${p.displayName}' created for ${p.subject} (role ${p.role}, id ${created.name}, ${p.expiresAt ? `expires ${shortTime(p.expiresAt)}` : 'does not expire'}).`,
        '',
        `  ${created.token}`,
        '',
        'Copy it now: this is the only time it is shown; the server keeps only a hash.',
        `Use it with: labforge login --server ${ctx.server} --token-stdin`,
        '',
      ].join('\n'),
    );
    process.stderr.write('Warning: treat the token like a password; anyone holding it acts with its role until it is revoked.\n');
  });

  withOutput(token.command('list').description('List the API tokens of the server (admins only); secrets are never shown')).action(
    async (opts: OutputOptions) => {
      const tokens = await loadContext().client.listTokens();
      if (opts.output === 'json') return printJson(tokens);
      printTable(TOKEN_HEADERS, tokens.map(tokenRow), 'No tokens.');
    },
  );

  withOutput(
    token.command('revoke').argument('<id>', 'token id, as shown by `labforge token list`').description('Revoke a token at once (admins only)'),
  ).action(async (id: string, opts: OutputOptions) => {
    const t = await loadContext().client.revokeToken(id);
    if (opts.output === 'json') return printJson(t);
    process.stdout.write(`Token ${t.name} ('${t.properties.displayName}', ${t.properties.subject}) is revoked; requests with it are refused from now on.\n`);
  });
}
