// The rules a VM's request must meet before anything is made: names, the
// admin identity a Generalized image needs (and a Specialized one refuses),
// cloud-init customData, sizes. Pure functions: tested without a server.
import YAML from 'yaml';
import type { VmSize } from '../config/config.js';
import { invalidParameter, LabforgeError } from '../errors.js';
import { nameProblem } from '../lib/names.js';

export const COMPUTER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const RESERVED_USERS = new Set(['root', 'admin', 'administrator', 'daemon', 'bin', 'sys', 'nobody', 'guest']);

/** The credentials a VM request gives for its admin user. */
export interface AdminIdentity {
  adminUsername?: string;
  adminPassword?: string;
  sshPublicKeys?: string[];
}

export function checkVmName(name: string): void {
  const problem = nameProblem('vm', name);
  if (problem) throw invalidParameter(problem, 'virtualMachineName');
}

/** The computer (host) name a VM gets: the one given, else its own name, within the OS's limits. */
export function computerNameFor(given: string | undefined, vmName: string, osType: string): string {
  const computerName = given ?? vmName.toLowerCase().slice(0, osType === 'Windows' ? 15 : 63);
  if (!COMPUTER_NAME.test(computerName) || (osType === 'Windows' && computerName.length > 15)) {
    throw invalidParameter(
      `'${computerName}' cannot be a computer name: use letters, digits and hyphens, not starting or ending with a hyphen, at most ${osType === 'Windows' ? 15 : 63} characters.`,
      'properties.osProfile.computerName',
    );
  }
  return computerName;
}

/** The size by name (any case), or a refusal listing the sizes this server offers. */
export function findSize(sizes: Record<string, VmSize>, name: string, field: string): [string, VmSize] {
  const size = Object.entries(sizes).find(([n]) => n.toLowerCase() === name.toLowerCase());
  if (!size) throw invalidParameter(`'${name}' is not a VM size of this server. Use one of: ${Object.keys(sizes).join(', ')}.`, field);
  return size;
}

/** A host name for a lab's VM from the lab's and the VM's names. */
export function labVmHostName(lab: string, vm: string, windows: boolean): string {
  const base = `${lab}-${vm}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return (windows ? base.slice(-15) : base.slice(0, 63)).replace(/^-+|-+$/g, '') || 'labvm';
}

/** A Generalized image needs an admin user with a password or SSH key; a Specialized one keeps its own accounts and refuses them. */
export function checkIdentity(input: AdminIdentity, osState: string, imageName: string): void {
  const given = input.adminUsername !== undefined || input.adminPassword !== undefined || (input.sshPublicKeys?.length ?? 0) > 0;
  if (osState === 'Specialized') {
    if (given) {
      throw invalidParameter(
        `Image '${imageName}' is Specialized: its VMs boot as exact copies and keep the image's own accounts and passwords, so osProfile credentials (adminUsername, adminPassword, SSH keys) must not be given. Remove them, or use a Generalized image to set new credentials.`,
        'properties.osProfile',
      );
    }
    return;
  }
  if (!input.adminUsername || (!input.adminPassword && !input.sshPublicKeys?.length)) {
    throw new LabforgeError(
      400,
      'CredentialsRequired',
      `Image '${imageName}' is Generalized: each VM gets its own identity at first boot, so it needs an admin user. Give properties.osProfile.adminUsername and an adminPassword or an SSH public key (linuxConfiguration.ssh.publicKeys).`,
      'properties.osProfile.adminUsername',
    );
  }
  if (!USER_NAME.test(input.adminUsername) || RESERVED_USERS.has(input.adminUsername)) {
    throw invalidParameter(
      `'${input.adminUsername}' cannot be the admin user name: use 1-32 lower-case letters, digits, '_' or '-', starting with a letter or '_', and not a reserved name (${[...RESERVED_USERS].join(', ')}).`,
      'properties.osProfile.adminUsername',
    );
  }
  if (input.adminPassword !== undefined) {
    const pw = input.adminPassword;
    const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(pw)).length;
    if (pw.length < 8 || pw.length > 123 || classes < 3) {
      throw invalidParameter(
        'The admin password must be 8-123 characters and contain three of: a lower-case letter, an upper-case letter, a digit, a special character.',
        'properties.osProfile.adminPassword',
      );
    }
  }
  for (const k of input.sshPublicKeys ?? []) {
    if (!/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+( .*)?$/.test(k.trim())) {
      throw invalidParameter(
        'An SSH public key is not in OpenSSH format (for example "ssh-ed25519 AAAA... user@host").',
        'properties.osProfile.linuxConfiguration.ssh.publicKeys',
      );
    }
  }
}

const RESERVED_CLOUD_CONFIG = ['users', 'hostname', 'fqdn', 'password', 'chpasswd'];

/** customData is a #cloud-config document merged into the VM's first-boot user-data (beside the admin user labforge adds). */
export function parseCustomData(text: string | undefined, osState: string): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  const field = 'properties.osProfile.customData';
  if (osState !== 'Generalized') {
    throw invalidParameter(
      'customData runs at first boot of a Generalized image; a Specialized image boots as an exact copy and ignores it. Remove it.',
      field,
    );
  }
  if (!text.startsWith('#cloud-config')) {
    throw invalidParameter(
      'customData must be a cloud-init "#cloud-config" document (its first line is #cloud-config), base64-encoded as Azure expects.',
      field,
    );
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw invalidParameter(`customData is not valid YAML: ${(err as Error).message}`, field);
  }
  if (doc === null || doc === undefined) return undefined;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw invalidParameter('customData must be a YAML mapping of cloud-config keys.', field);
  const reserved = Object.keys(doc).filter((k) => RESERVED_CLOUD_CONFIG.includes(k));
  if (reserved.length) {
    throw invalidParameter(
      `customData must not set ${reserved.join(', ')}: the admin user and host name come from osProfile (adminUsername, adminPassword, computerName).`,
      field,
    );
  }
  return doc as Record<string, unknown>;
}
