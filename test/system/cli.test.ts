// The command-line client as a user meets it: the built `labforge` program run
// as a child process against a real TLS server, checking output and exit codes.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/services/token.service.js';
import { BIN, ensureBuilt, ROOT } from '../helpers/cli.js';
import { COMPUTE, startTestServer, type TestServer } from '../helpers/server.js';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('labforge command-line client', () => {
  let t: TestServer;
  let home: string;
  let adminDir: string;
  const sub = () => t.sub;

  /** Runs the CLI with its own config folder; async so the in-process server keeps answering. */
  function cli(args: string[], opts: { configDir?: string; input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
    const env: Record<string, string | undefined> = { ...process.env, LABFORGE_CONFIG_DIR: opts.configDir ?? adminDir, ...opts.env };
    // The user's own settings must not leak into the test.
    for (const k of ['LABFORGE_SERVER', 'LABFORGE_TOKEN', 'LABFORGE_CA_FILE', 'LABFORGE_SUBSCRIPTION', 'NODE_EXTRA_CA_CERTS']) {
      if (!opts.env?.[k]) delete env[k];
    }
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { env, cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => {
        stdout += c;
      });
      child.stderr.on('data', (c) => {
        stderr += c;
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`labforge ${args.join(' ')} did not finish within 15 s\nstdout: ${stdout}\nstderr: ${stderr}`));
      }, 15_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(opts.input ?? '');
    });
  }

  const loginArgs = (token: string) => ['login', '--server', t.server.url, '--token', token, '--ca-file', t.server.caFile as string];

  beforeAll(async () => {
    ensureBuilt();
    t = await startTestServer('sqlite', { tls: true });
    home = mkdtempSync(join(tmpdir(), 'labforge-cli-'));
    adminDir = join(home, 'admin');
  });

  afterAll(async () => {
    await t?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('documents the exit codes in --help', async () => {
    const root = await cli(['--help']);
    expect(root.code).toBe(0);
    expect(root.stdout).toMatch(/Exit codes/);
    expect(root.stdout).toMatch(/5\s+not found/);
    const help = await cli(['gallery', 'create', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--resource-group/);
    expect(help.stdout).toMatch(/Exit codes/);
  });

  it('exits 2 on usage errors and 3 when not logged in', async () => {
    const unknown = await cli(['gallery', 'frobnicate']);
    expect(unknown.code).toBe(2);
    const missing = await cli(['gallery', 'show', 'g1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/labforge: required option '-g, --resource-group/);
    const notLoggedIn = await cli(['gallery', 'list'], { configDir: join(home, 'nobody') });
    expect(notLoggedIn.code).toBe(3);
    expect(notLoggedIn.stderr).toMatch(/^labforge: You are not logged in/);
  });

  it('refuses a bad token at login with exit 3 and stores nothing', async () => {
    const dir = join(home, 'bad');
    const bad = TokenService.generate().token;
    const r = await cli(loginArgs(bad), { configDir: dir });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^labforge: .*refused the token: .*InvalidAuthenticationToken, HTTP 401/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
  });

  it('exits 9 with a hint when the CA is not trusted', async () => {
    const r = await cli(['login', '--server', t.server.url, '--token', t.adminToken], { configDir: join(home, 'untrusted') });
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(/not trusted.*--ca-file/);
  });

  it('logs in with the CA file and stores the login readable only by the owner', async () => {
    const r = await cli(loginArgs(t.adminToken));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Logged in to .* as admin \(role admin\)/);
    const file = join(adminDir, 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    expect(stored).toMatchObject({ server: t.server.url, token: t.adminToken, caFile: t.server.caFile, subscription: sub() });
  });

  it('creates a gallery (and its resource group) and lists it', async () => {
    const created = await cli(['gallery', 'create', 'courseGallery', '-g', 'cli-rg', '--description', 'Networking course']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/Created resource group 'cli-rg'/);
    expect(created.stdout).toMatch(/Created gallery 'courseGallery'/);

    const list = await cli(['gallery', 'list', '-o', 'json']);
    expect(list.code, list.stderr).toBe(0);
    const galleries = JSON.parse(list.stdout);
    expect(galleries).toEqual([
      expect.objectContaining({ name: 'courseGallery', location: 'site-a', properties: expect.objectContaining({ description: 'Networking course' }) }),
    ]);

    const table = await cli(['gallery', 'list', '--resource-group', 'cli-rg']);
    expect(table.stdout).toMatch(/^NAME\s+RESOURCE GROUP\s+LOCATION/);
    expect(table.stdout).toMatch(/courseGallery\s+cli-rg\s+site-a/);

    const again = await cli(['gallery', 'create', 'courseGallery', '-g', 'cli-rg']);
    expect(again.code).toBe(6);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('creates an image definition and shows its fields', async () => {
    const created = await cli([
      'image',
      'create',
      'ubuntu-lab',
      '--gallery',
      'courseGallery',
      '-g',
      'cli-rg',
      '--os-type',
      'linux',
      '--os-state',
      'Generalized',
      '--publisher',
      'school',
      '--offer',
      'ubuntu',
      '--sku',
      '24.04',
      '--hyper-v-generation',
      'V2',
      '--min-vcpus',
      '2',
      '--max-memory',
      '8192',
      '--end-of-life',
      '2030-06-30',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const shown = await cli(['image', 'show', 'ubuntu-lab', '--gallery', 'courseGallery', '-g', 'cli-rg', '-o', 'json']);
    expect(shown.code, shown.stderr).toBe(0);
    const img = JSON.parse(shown.stdout);
    expect(img.name).toBe('ubuntu-lab');
    expect(img.properties).toMatchObject({
      osType: 'Linux',
      osState: 'Generalized',
      hyperVGeneration: 'V2',
      architecture: 'x64',
      identifier: { publisher: 'school', offer: 'ubuntu', sku: '24.04' },
      recommended: { vCPUs: { min: 2 }, memory: { max: 8192 } },
    });
    expect(img.properties.endOfLifeDate).toMatch(/^2030-06-30/);

    const badChoice = await cli([
      'image',
      'create',
      'x',
      '--gallery',
      'courseGallery',
      '-g',
      'cli-rg',
      '--os-type',
      'Plan9',
      '--os-state',
      'Generalized',
      '--publisher',
      'a',
      '--offer',
      'b',
      '--sku',
      'c',
    ]);
    expect(badChoice.code).toBe(2);
    expect(badChoice.stderr).toMatch(/Linux, Windows/);
  });

  it('exits 5 with a readable message when an image has no latest version', async () => {
    const r = await cli(['version', 'show', 'latest', '--gallery', 'courseGallery', '--image', 'ubuntu-lab', '-g', 'cli-rg']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/^labforge: Image definition 'ubuntu-lab' has no version that can be used as latest.*\(ResourceNotFound, HTTP 404\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it('waits for a version-creation operation until it succeeds', async () => {
    const put = await t.call(
      'PUT',
      `/subscriptions/${sub()}/resourceGroups/cli-rg/providers/Microsoft.Compute/galleries/courseGallery/images/ubuntu-lab/versions/1.0.0?${COMPUTE}`,
      { location: 'site-a', properties: { storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=4' } } } } },
    );
    expect(put.status).toBe(201);
    const opUrl = put.headers['azure-asyncoperation'] as string;
    const id = new URL(opUrl).pathname.split('/').pop() as string;

    const r = await cli(['operation', 'wait', id, '--timeout', '20']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Operation ${id} succeeded: .*/versions/1\\.0\\.0`));
    // Not a terminal: progress comes as plain percentage lines.
    expect(r.stderr).toMatch(/Operation .*: 100% Succeeded/);

    const shown = await cli(['operation', 'show', opUrl, '-o', 'json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: id, status: 'Succeeded', percentComplete: 100 });

    const latest = await cli(['version', 'show', 'latest', '--gallery', 'courseGallery', '--image', 'ubuntu-lab', '-g', 'cli-rg']);
    expect(latest.code, latest.stderr).toBe(0);
    expect(latest.stdout).toMatch(/Version:\s+1\.0\.0/);
    expect(latest.stdout).toMatch(/REGION\s+STATE\s+PROGRESS/);
    expect(latest.stdout).toMatch(/site-a\s+Completed\s+100%/);
  });

  it('creates a token that works for login; a creator gets exit 4 on gallery create', async () => {
    const created = await cli(['token', 'create', '--name', 'teacher-smith', '--role', 'creator', '--expires-in-days', '30']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/only time it is shown/);
    const token = /lfg_\S+/.exec(created.stdout)?.[0] as string;
    expect(TokenService.isWellFormed(token)).toBe(true);

    const list = await cli(['token', 'list', '-o', 'json']);
    expect(JSON.parse(list.stdout).map((x: { properties: { displayName: string } }) => x.properties.displayName)).toContain('teacher-smith');
    expect(list.stdout).not.toContain(token);

    const creatorDir = join(home, 'creator');
    const login = await cli(['login', '--server', t.server.url, '--token-stdin', '--ca-file', t.server.caFile as string], {
      configDir: creatorDir,
      input: `${token}\n`,
    });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/as teacher-smith \(role creator\)/);

    const forbidden = await cli(['gallery', 'create', 'notAllowed', '-g', 'cli-rg'], { configDir: creatorDir });
    expect(forbidden.code).toBe(4);
    expect(forbidden.stderr).toMatch(/^labforge: .*role 'creator'.*\(AuthorizationFailed, HTTP 403\)/);

    const reads = await cli(['gallery', 'list', '-o', 'json'], { configDir: creatorDir });
    expect(reads.code, reads.stderr).toBe(0);
  });

  it('generates a well-formed token without a server', async () => {
    const r = await cli(['token', 'generate'], { configDir: join(home, 'offline') });
    expect(r.code).toBe(0);
    expect(TokenService.isWellFormed(r.stdout.trim())).toBe(true);
  });

  it('logs out by removing the stored login', async () => {
    const dir = join(home, 'creator');
    const r = await cli(['logout'], { configDir: dir });
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
    const after = await cli(['gallery', 'list'], { configDir: dir });
    expect(after.code).toBe(3);
  });
});
