// `labforge vm …`: virtual machines made from gallery images — create, list,
// show, start, stop, restart, delete, capture into the gallery, console.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import WebSocket from 'ws';
import type { VirtualMachine, VirtualMachineInput } from '../../contract/index.js';
import { type Context, loadContext } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { groupOf, type OutputOptions, printFields, printJson, printTableWithNotes, reasonText, say, shortTime, withOutput } from '../output.js';
import { followOperation } from './operation.js';
import { printVersion } from './version.js';

interface VmScope extends OutputOptions {
  resourceGroup: string;
}
interface WaitScope extends VmScope {
  wait: boolean;
}

/** Adds --resource-group, which every VM command needs. */
function scoped(cmd: Command): Command {
  return withOutput(cmd.requiredOption('-g, --resource-group <group>', "the VM's resource group"));
}

const connectText = (v: VirtualMachine) => {
  const c = v.properties.connectionProfile;
  if (c?.sshAuthority) {
    const [host, port] = c.sshAuthority.split(':');
    return `ssh -p ${port} ${v.properties.osProfile?.adminUsername ?? 'USER'}@${host}`;
  }
  return c?.rdpAuthority ? `RDP to ${c.rdpAuthority}` : undefined;
};

export function printVm(v: VirtualMachine): void {
  const p = v.properties;
  printFields([
    ['Name', v.name],
    ['Resource group', groupOf(v.id)],
    ['Location', v.location],
    ['State', `${p.state}${p.generalized ? ' (generalized: capture it, then delete it)' : ''}`],
    ['Provisioning', p.provisioningState],
    [p.state === 'Failed' ? 'Why' : 'Note', reasonText(p)],
    ['Image', p.storageProfile.imageReference.id],
    ['Image version', p.storageProfile.imageReference.exactVersion],
    ['OS', `${p.storageProfile.osDisk?.osType ?? '-'} (${p.osState ?? '-'})`],
    ['Size', `${p.hardwareProfile.vmSize} (${p.hardwareProfile.vmSizeProperties?.vCPUsAvailable ?? '?'} vCPU, ${p.hardwareProfile.memoryMiB ?? '?'} MiB)`],
    ['Computer name', p.osProfile?.computerName],
    ['Admin user', p.osProfile?.adminUsername],
    ['Connect', connectText(v)],
    ['Created', `${shortTime(v.systemData?.createdAt) ?? '-'} by ${v.systemData?.createdBy ?? '-'}`],
    ['Id', v.id],
  ]);
}

/** An image id from a full ARM id, `gallery/image[/version]`, or `builtin/image` for the images that come with labforge. */
function imageId(sub: string, ref: string, group: string, imageGroup?: string): string {
  if (ref.startsWith('/')) return ref;
  const parts = ref.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !p)) {
    throw new CliError(
      `'${ref}' is not an image reference. Use GALLERY/IMAGE (its latest version), GALLERY/IMAGE/VERSION, builtin/labforge-test-guest, or a full image id.`,
      EXIT.usage,
    );
  }
  const [gallery, image, version] = parts as [string, string, string | undefined];
  const rg = imageGroup ?? (gallery.toLowerCase() === 'builtin' ? 'labforge-builtin' : group);
  return `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/galleries/${gallery}/images/${image}${version ? `/versions/${version}` : ''}`;
}

function readSecretFile(file: string, what: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new CliError(`The ${what} file ${file} cannot be read: ${(err as Error).message}`, EXIT.usage);
  }
}

interface CreateOptions extends WaitScope {
  image: string;
  imageGroup?: string;
  location?: string;
  size?: string;
  adminUser?: string;
  passwordFile?: string;
  sshKey?: string[];
  computerName?: string;
  customData?: string;
}

async function createVm(name: string, opts: CreateOptions): Promise<void> {
  const ctx = loadContext();
  const sub = await ctx.subscription();
  const password = opts.passwordFile ? readSecretFile(opts.passwordFile, 'password') : process.env.LABFORGE_VM_PASSWORD || undefined;
  const keys = (opts.sshKey ?? []).map((f) => readSecretFile(f, 'SSH public key').trim());
  const os: NonNullable<VirtualMachineInput['properties']>['osProfile'] = {
    ...(opts.computerName ? { computerName: opts.computerName } : {}),
    ...(opts.adminUser ? { adminUsername: opts.adminUser } : {}),
    ...(password ? { adminPassword: password } : {}),
    ...(keys.length ? { linuxConfiguration: { ssh: { publicKeys: keys.map((k) => ({ keyData: k })) } } } : {}),
    ...(opts.customData ? { customData: Buffer.from(readSecretFile(opts.customData, 'custom data')).toString('base64') } : {}),
  };
  const r = await ctx.client.putVm(
    sub,
    opts.resourceGroup,
    name,
    {
      ...(opts.location ? { location: opts.location } : {}),
      properties: {
        ...(opts.size ? { hardwareProfile: { vmSize: opts.size } } : {}),
        storageProfile: { imageReference: { id: imageId(sub, opts.image, opts.resourceGroup, opts.imageGroup) } },
        ...(Object.keys(os).length ? { osProfile: os } : {}),
      },
    },
    { onlyIfNew: true },
  );
  say(opts, `Creating VM ${name} from ${r.body.properties.storageProfile.imageReference.exactVersion ?? 'its image'}…`);
  if (!(await followOperation(ctx, r.operationUrl, opts, `Creating VM ${name}`))) return;
  await showVm(ctx, sub, opts, name, `VM ${name} is running.`);
}

async function showVm(ctx: Context, sub: string, opts: VmScope, name: string, line?: string): Promise<void> {
  const v = await ctx.client.getVm(sub, opts.resourceGroup, name);
  if (opts.output === 'json') return printJson(v);
  if (line) process.stdout.write(`${line}\n\n`);
  printVm(v);
}

async function power(
  name: string,
  opts: WaitScope,
  action: 'start' | 'powerOff' | 'restart' | 'reimage' | 'redeploy',
  doing: string,
  done: string,
): Promise<void> {
  const ctx = loadContext();
  const sub = await ctx.subscription();
  const r = await ctx.client.vmAction(sub, opts.resourceGroup, name, action);
  say(opts, `${doing} VM ${name}…`);
  if (!(await followOperation(ctx, r.operationUrl, opts, `${doing} VM ${name}`))) return;
  await showVm(ctx, sub, opts, name, `VM ${name} ${done}.`);
}

interface CaptureOptions extends WaitScope {
  gallery: string;
  image: string;
  version: string;
  galleryGroup?: string;
  generalize?: boolean;
}

async function captureVm(name: string, opts: CaptureOptions): Promise<void> {
  const ctx = loadContext();
  const sub = await ctx.subscription();
  const vm = await ctx.client.getVm(sub, opts.resourceGroup, name);
  if (opts.generalize && !vm.properties.generalized) {
    await ctx.client.generalizeVm(sub, opts.resourceGroup, name);
    say(opts, `VM ${name} is marked generalized: it can be captured and deleted, no longer started.`);
  }
  const rg = opts.galleryGroup ?? opts.resourceGroup;
  const r = await ctx.client.putVersion(
    sub,
    rg,
    opts.gallery,
    opts.image,
    opts.version,
    { properties: { storageProfile: { source: { virtualMachineId: vm.id } } } },
    { onlyIfNew: true },
  );
  say(opts, `Capturing VM ${name} as ${opts.gallery}/${opts.image} ${opts.version} (only the blocks it changed are read)…`);
  if (!(await followOperation(ctx, r.operationUrl, opts, `Capturing VM ${name}`))) return;
  const v = await ctx.client.getVersion(sub, rg, opts.gallery, opts.image, opts.version, { expandReplication: true });
  if (opts.output === 'json') return printJson(v);
  process.stdout.write(`Captured VM ${name} as version ${opts.version} of ${opts.gallery}/${opts.image}.\n\n`);
  printVersion(v);
}

/** Streams the VM's serial console to stdout until the VM stops or Ctrl+C. */
async function followConsole(ctx: Context, url: string): Promise<void> {
  const ca = ctx.client.caCertificates;
  const ws = new WebSocket(url, { ...(ca ? { ca } : {}) });
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (d) => process.stdout.write(d.toString()));
    ws.on('close', (_code, reason) => {
      if (reason.length) process.stderr.write(`\nlabforge: console closed: ${reason.toString()}\n`);
      resolve();
    });
    ws.on('unexpected-response', (_req, res) => reject(new CliError(`The console was refused (HTTP ${res.statusCode}); try again.`, EXIT.failure)));
    ws.on('error', (err) => reject(new CliError(`The console connection failed: ${err.message}`, EXIT.unreachable)));
    process.once('SIGINT', () => ws.close());
  });
}

export function registerVm(program: Command): void {
  const vm = program.command('vm').description('Create, list, start, stop, capture and delete virtual machines made from gallery images');

  scoped(
    vm
      .command('create')
      .argument('<name>', 'VM name: letters, digits and hyphens')
      .description('Create a VM from a gallery image (a copy-on-write disk: nothing is copied) and start it')
      .requiredOption('--image <image>', 'GALLERY/IMAGE (latest version), GALLERY/IMAGE/VERSION, builtin/labforge-test-guest, or a full image id')
      .option('--image-group <group>', "the gallery's resource group (default: the VM's; labforge-builtin for builtin/…)")
      .option('--location <region>', "region to run the VM in (default: the resource group's); the image version must be replicated there")
      .option('--size <size>', 'VM size, e.g. Standard_B1s (see docs/OPERATIONS.md for the sizes and what they get)')
      .option('--admin-user <name>', 'admin user for a Generalized image (not allowed for Specialized images)')
      .option('--password-file <file>', "file holding the admin password ('-' reads standard input); or set LABFORGE_VM_PASSWORD")
      .option('--ssh-key <file>', 'an SSH public key file for the admin user; repeat for more', (v: string, prev: string[] = []) => [...prev, v])
      .option('--computer-name <name>', 'host name inside the guest (default: the VM name)')
      .option('--custom-data <file>', 'a #cloud-config file run at first boot (Generalized images only)')
      .option('--no-wait', 'do not wait for the VM to boot; print the operation id instead'),
  ).action(createVm);

  withOutput(
    vm.command('list').description('List VMs (students see only their own)').option('-g, --resource-group <group>', 'only this resource group'),
  ).action(async (opts: OutputOptions & { resourceGroup?: string }) => {
    const ctx = loadContext();
    const vms = await ctx.client.listVms(await ctx.subscription(), opts.resourceGroup);
    if (opts.output === 'json') return printJson(vms);
    printTableWithNotes(
      ['NAME', 'GROUP', 'STATE', 'IMAGE', 'VERSION', 'SIZE', 'CONNECT'],
      vms.map((v) => ({
        cells: [
          v.name,
          groupOf(v.id),
          v.properties.generalized ? `${v.properties.state} (generalized)` : v.properties.state,
          v.properties.storageProfile.imageReference.id.replace(/.*\/galleries\/([^/]+)\/images\/([^/]+).*/, '$1/$2'),
          v.properties.storageProfile.imageReference.exactVersion,
          v.properties.hardwareProfile.vmSize,
          v.properties.connectionProfile?.sshAuthority ?? v.properties.connectionProfile?.rdpAuthority,
        ],
        noteColumn: 2,
        ...(v.properties.statusCode ? { note: `${v.name}: ${reasonText(v.properties)}` } : {}),
      })),
      'No VMs. Create one with `labforge vm create NAME -g GROUP --image builtin/labforge-test-guest --admin-user USER --password-file FILE`.',
    );
  });

  scoped(vm.command('show').argument('<name>', 'VM name').description('Show a VM: state, image version, size and how to connect')).action(
    async (name: string, opts: VmScope) => {
      const ctx = loadContext();
      await showVm(ctx, await ctx.subscription(), opts, name);
    },
  );

  for (const [cmd, action, doing, done, help] of [
    ['start', 'start', 'Starting', 'is running', 'Start a VM'],
    ['stop', 'powerOff', 'Stopping', 'is stopped', 'Shut a VM down: the ACPI power button, then forced off after the timeout'],
    ['restart', 'restart', 'Restarting', 'is running again', 'Restart a VM'],
    [
      'reimage',
      'reimage',
      'Reimaging',
      'has a fresh disk from its image and is stopped',
      "Drop everything the guest changed: a fresh disk from the VM's image version (the VM ends stopped)",
    ],
    ['redeploy', 'redeploy', 'Redeploying', 'is running in a new process', 'Stop the VM at once and start it again in a new process on the same disk'],
  ] as const) {
    scoped(vm.command(cmd).argument('<name>', 'VM name').description(help).option('--no-wait', 'do not wait; print the operation id instead')).action(
      (name: string, opts: WaitScope) => power(name, opts, action, doing, done),
    );
  }

  scoped(
    vm
      .command('tag')
      .argument('<name>', 'VM name')
      .argument('[tags...]', 'NAME=VALUE to set (for example FactoryIgnore=yes)')
      .option('--remove <name...>', 'tag names to remove')
      .description('Set or remove tags on a VM (for example FactoryIgnore=yes, so the image factory leaves it alone)'),
  ).action(async (name: string, pairs: string[], opts: VmScope & { remove?: string[] }) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const tags = { ...((await ctx.client.getVm(sub, opts.resourceGroup, name)).tags ?? {}) };
    for (const pair of pairs) {
      const at = pair.indexOf('=');
      if (at <= 0) throw new CliError(`'${pair}' is not a tag: write NAME=VALUE (for example FactoryIgnore=yes).`, EXIT.usage);
      tags[pair.slice(0, at)] = pair.slice(at + 1);
    }
    for (const k of opts.remove ?? []) delete tags[k];
    const updated = await ctx.client.patchVmTags(sub, opts.resourceGroup, name, tags);
    if (opts.output === 'json') return printJson(updated);
    const list = Object.entries(updated.tags ?? {}).map(([k, v]) => `${k}=${v}`);
    process.stdout.write(`VM ${name} has ${list.length ? `the tags ${list.join(', ')}` : 'no tags'}.\n`);
  });

  scoped(vm.command('delete').argument('<name>', 'VM name').description('Delete a VM: its processes and its disk (the image is not touched)')).action(
    async (name: string, opts: VmScope) => {
      const ctx = loadContext();
      const deleted = await ctx.client.deleteVm(await ctx.subscription(), opts.resourceGroup, name);
      say(opts, deleted ? `Deleted VM ${name}.` : `There was no VM ${name}; nothing to delete.`);
      if (opts.output === 'json') printJson({ deleted });
    },
  );

  scoped(
    vm
      .command('capture')
      .argument('<name>', 'VM name')
      .description(
        "Capture a VM's disk into a gallery image definition as a new version; only what changed since its image is read and stored. A running VM is paused briefly.",
      )
      .requiredOption('--gallery <gallery>', 'the gallery')
      .requiredOption('--image <image>', 'the image definition (Specialized keeps the VM as it is; Generalized needs --generalize)')
      .requiredOption('--version <version>', 'the new version number, like 1.1.0')
      .option('--gallery-group <group>', "the gallery's resource group (default: the VM's)")
      .option('--generalize', 'the guest was deprovisioned and shut down: mark the VM generalized (it cannot start again) and capture it')
      .option('--no-wait', 'do not wait for the capture; print the operation id instead'),
  ).action(captureVm);

  scoped(
    vm
      .command('console')
      .argument('<name>', 'VM name')
      .description("Follow the VM's serial console (read-only) until it stops or Ctrl+C; --url prints the WebSocket URLs instead (VNC for noVNC)")
      .option('--url', 'print the one-minute console URLs instead of following the serial console'),
  ).action(async (name: string, opts: VmScope & { url?: boolean }) => {
    const ctx = loadContext();
    const c = await ctx.client.vmConsole(await ctx.subscription(), opts.resourceGroup, name);
    if (opts.url || opts.output === 'json') {
      if (opts.output === 'json') return printJson(c);
      return printFields([
        ['VNC (noVNC)', c.vncUrl],
        ['Serial (read-only)', c.serialUrl],
        ['Valid until', c.expiresAt],
      ]);
    }
    await followConsole(ctx, c.serialUrl);
  });
}
