// `labforge user create`, `labforge register` and `labforge login --email`:
// an admin invites an educator, who chooses a password and logs in with it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('labforge user, register and login --email', () => {
  let t: TestServer;
  let dir: string;
  const env = (configDir: string, extra: Record<string, string> = {}) => ({
    LABFORGE_CONFIG_DIR: configDir,
    LABFORGE_CA_FILE: t.server.caFile as string,
    ...extra,
  });

  beforeAll(async () => {
    ensureBuilt();
    t = await startTestServer('sqlite', { tls: true });
    dir = mkdtempSync(join(tmpdir(), 'labforge-cli-acc-'));
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('invites, registers, logs in with email and password, and refuses a wrong one', async () => {
    const adminDir = join(dir, 'admin');
    const admin = (args: string[]) => runCli(args, { env: env(adminDir, { LABFORGE_SERVER: t.server.url, LABFORGE_TOKEN: t.adminToken }) });
    const created = await admin(['user', 'create', 'rivera@school.edu', '--role', 'creator', '--name', 'Ms Rivera']);
    expect(created.code, created.stderr).toBe(0);
    const invitation = /labforge register .* --invitation (\S+)/.exec(created.stdout)?.[1];
    expect(invitation).toBeDefined();
    expect((await admin(['user', 'list'])).stdout).toMatch(/rivera@school\.edu +Ms Rivera +creator +Invited/);

    const pw = join(dir, 'pw.txt');
    writeFileSync(pw, 'Correct-Horse-42\n');
    const teacherDir = join(dir, 'teacher');
    const reg = await runCli(
      ['register', '--server', t.server.url, '--email', 'rivera@school.edu', '--invitation', invitation as string, '--password-file', pw],
      {
        env: env(teacherDir),
      },
    );
    expect(reg.code, reg.stderr).toBe(0);
    expect(reg.stdout).toMatch(/Registered rivera@school\.edu \(role creator\) and logged in/);
    expect((await runCli(['whoami'], { env: env(teacherDir) })).stdout).toMatch(/Subject: +rivera@school\.edu/);

    const laptop = join(dir, 'laptop');
    const login = await runCli(['login', '--server', t.server.url, '--email', 'rivera@school.edu', '--password-file', pw], { env: env(laptop) });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/Logged in to .* as rivera@school\.edu \(role creator\)/);
    writeFileSync(pw, 'Wrong-Horse-42\n');
    const wrong = await runCli(['login', '--server', t.server.url, '--email', 'rivera@school.edu', '--password-file', pw], { env: env(join(dir, 'other')) });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/The email or the password is wrong/);
  }, 60_000);
});
