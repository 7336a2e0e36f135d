// `labforge doctor` reports what this host has and what is wrong.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureBuilt } from '../helpers/cli.js';

describe('labforge doctor', () => {
  let dir: string;
  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'labforge-doctor-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const doctor = (env: Record<string, string>, args: string[] = []) =>
    spawnSync(process.execPath, [BIN, 'doctor', ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });

  it('says how VMs are accelerated and that the tools and the store are there', () => {
    const r = doctor({ LABFORGE_DATA_DIR: dir });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    // Whatever this host's KVM does, the line says which accelerator VMs get and why.
    expect(r.stdout).toMatch(
      /(ok {2}\s+acceleration\s+KVM: VMs run at native speed\. KVM works: a Linux kernel booted|WARN\s+acceleration\s+.*software emulation will be used .*Why: )/,
    );
    expect(r.stdout).toMatch(/ok\s+qemu-img/);
    expect(r.stdout).toMatch(/ok\s+metadata store\s+SQLite/);
  }, 60_000);

  it('fails with the reason when the configuration is wrong', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'listen: nowhere\n');
    const r = doctor({ LABFORGE_DATA_DIR: dir }, ['--config', file]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+configuration\s+.*bad\.yaml/);
    expect(r.stdout).toContain('1 problem(s) found');
  }, 60_000);
});
