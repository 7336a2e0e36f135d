// First-boot identity for VMs made from Generalized images: a NoCloud seed
// (an ISO 9660 volume labelled `cidata`) with meta-data (instance id, host
// name) and cloud-config user-data (the admin user with a password hash
// and/or SSH keys), plus an unattend answer file for Windows images.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ComputeError } from '../errors.js';

const run = promisify(execFile);

export interface SeedIdentity {
  instanceId: string;
  hostname: string;
  osType: 'Linux' | 'Windows';
  adminUser: { name: string; password?: string; passwordHash?: string; sshPublicKeys?: string[] };
  /** Extra cloud-config keys (write_files, runcmd, power_state…) merged into user-data. */
  cloudConfig?: Record<string, unknown>;
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

/** SHA-512 crypt of a password, as /etc/shadow wants it (the clear password never reaches the disk). */
export async function hashPassword(password: string): Promise<string> {
  const child = execFile('openssl', ['passwd', '-6', '-stdin']);
  child.stdin?.end(password);
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  await new Promise<void>((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve() : reject(new Error('openssl passwd failed')))));
  return out.trim();
}

const yamlString = (s: string) => JSON.stringify(s);

export async function userData(id: SeedIdentity): Promise<string> {
  const u = id.adminUser;
  const hash = u.passwordHash ?? (u.password ? await hashPassword(u.password) : undefined);
  const lines = [
    '#cloud-config',
    `hostname: ${yamlString(id.hostname)}`,
    'users:',
    `  - name: ${yamlString(u.name)}`,
    '    groups: [sudo, wheel]',
    '    shell: /bin/sh',
  ];
  if (hash) lines.push(`    passwd: ${yamlString(hash)}`, '    lock_passwd: false');
  if (u.sshPublicKeys?.length) {
    lines.push('    ssh_authorized_keys:');
    for (const k of u.sshPublicKeys) lines.push(`      - ${yamlString(k)}`);
  }
  if (hash) lines.push('ssh_pwauth: true');
  // Extra keys in block style: simple cloud-config readers (and people) read that best.
  const extra = id.cloudConfig && Object.keys(id.cloudConfig).length ? YAML.stringify(id.cloudConfig, { lineWidth: 0 }) : '';
  return `${lines.join('\n')}\n${extra}`;
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A minimal Windows answer file: computer name and the local administrator account. */
export function unattend(id: SeedIdentity): string {
  const pw = id.adminUser.password ?? '';
  return `<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
  <settings pass="specialize">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <ComputerName>${xml(id.hostname.slice(0, 15))}</ComputerName>
    </component>
  </settings>
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <UserAccounts>
        <LocalAccounts>
          <LocalAccount wcm:action="add">
            <Name>${xml(id.adminUser.name)}</Name>
            <Group>Administrators</Group>
            <Password><Value>${xml(pw)}</Value><PlainText>true</PlainText></Password>
          </LocalAccount>
        </LocalAccounts>
      </UserAccounts>
      <OOBE><HideEULAPage>true</HideEULAPage><SkipMachineOOBE>true</SkipMachineOOBE><SkipUserOOBE>true</SkipUserOOBE></OOBE>
    </component>
  </settings>
</unattend>
`;
}

/** Writes the seed image to `out`; refuses identities a guest could not use. */
export async function buildSeed(id: SeedIdentity, out: string): Promise<void> {
  if (!HOSTNAME.test(id.hostname))
    throw new ComputeError('InvalidParameter', `'${id.hostname}' is not a valid host name: use letters, digits and hyphens, at most 63.`, 'hostname');
  if (!USER.test(id.adminUser.name)) {
    throw new ComputeError(
      'InvalidParameter',
      `'${id.adminUser.name}' is not a valid user name: start with a letter, then letters, digits, '-' or '_', at most 32.`,
      'adminUser.name',
    );
  }
  if (!id.adminUser.password && !id.adminUser.passwordHash && !id.adminUser.sshPublicKeys?.length) {
    throw new ComputeError('InvalidParameter', 'A Generalized image needs credentials for its admin user: give a password or an SSH public key.', 'adminUser');
  }
  const dir = await mkdtemp(join(tmpdir(), 'labforge-seed-'));
  try {
    await writeFile(join(dir, 'meta-data'), `instance-id: ${id.instanceId}\nlocal-hostname: ${id.hostname}\n`);
    await writeFile(join(dir, 'user-data'), await userData(id));
    if (id.osType === 'Windows') await writeFile(join(dir, 'autounattend.xml'), unattend(id));
    await run('genisoimage', ['-quiet', '-output', out, '-volid', 'cidata', '-joliet', '-rock', dir], { timeout: 30_000 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
