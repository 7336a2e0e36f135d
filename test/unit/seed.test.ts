// NoCloud seeds give a Generalized image's VM its own identity at first boot.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSeed } from '../../src/compute/qemu/seed.js';

const dir = mkdtempSync(join(tmpdir(), 'labforge-seed-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const read = (iso: string, file: string) => execFileSync('isoinfo', ['-R', '-i', iso, '-x', `/${file}`]).toString();

describe('NoCloud seed', () => {
  it('carries the instance id, host name and admin user with a password hash, never the password', async () => {
    const iso = join(dir, 'seed.iso');
    await buildSeed(
      {
        instanceId: 'vm-42',
        hostname: 'lab-student-7',
        osType: 'Linux',
        adminUser: { name: 'teacher', password: 'S3cret!pass', sshPublicKeys: ['ssh-ed25519 AAAAC3 teacher@school'] },
      },
      iso,
    );
    expect(execFileSync('isoinfo', ['-d', '-i', iso]).toString()).toMatch(/Volume id:\s+cidata/);
    expect(read(iso, 'meta-data')).toBe('instance-id: vm-42\nlocal-hostname: lab-student-7\n');
    const ud = read(iso, 'user-data');
    expect(ud.startsWith('#cloud-config\n')).toBe(true);
    expect(ud).toContain('name: "teacher"');
    expect(ud).toMatch(/passwd: "\$6\$[^"]+"/);
    expect(ud).not.toContain('S3cret!pass');
    expect(ud).toContain('ssh-ed25519 AAAAC3 teacher@school');
  });

  it('adds a Windows answer file for Windows images', async () => {
    const iso = join(dir, 'win.iso');
    await buildSeed({ instanceId: 'vm-43', hostname: 'win-lab-01', osType: 'Windows', adminUser: { name: 'teacher', password: 'P@ss<w>rd' } }, iso);
    const xml = read(iso, 'autounattend.xml');
    expect(xml).toContain('<ComputerName>win-lab-01</ComputerName>');
    expect(xml).toContain('<Value>P@ss&lt;w&gt;rd</Value>');
  });

  it('refuses a Generalized identity without credentials, or with names a guest cannot use', async () => {
    await expect(buildSeed({ instanceId: 'x', hostname: 'ok', osType: 'Linux', adminUser: { name: 'teacher' } }, join(dir, 'a.iso'))).rejects.toThrow(
      /needs credentials/,
    );
    await expect(
      buildSeed({ instanceId: 'x', hostname: 'bad host', osType: 'Linux', adminUser: { name: 't', password: 'p' } }, join(dir, 'b.iso')),
    ).rejects.toThrow(/host name/);
    await expect(
      buildSeed({ instanceId: 'x', hostname: 'ok', osType: 'Linux', adminUser: { name: 'Root User', password: 'p' } }, join(dir, 'c.iso')),
    ).rejects.toThrow(/user name/);
  });
});
