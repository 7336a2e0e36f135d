// `labforge lab …`: labs — create one from a lab account's image, work on its
// template, export it to the gallery, publish student VMs, manage students.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { InvitedLabUser, Lab, LabUser, LabVm } from '../../contract/index.js';
import { type Context, loadContext } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { groupOf, type OutputOptions, printFields, printJson, printTable, printTableWithNotes, reasonText, say, shortTime, withOutput } from '../output.js';
import { followOperation } from './operation.js';

interface Scope extends OutputOptions {
  resourceGroup: string;
}
interface WaitScope extends Scope {
  wait: boolean;
}

const scoped = (cmd: Command) => withOutput(cmd.requiredOption('-g, --resource-group <group>', "the lab's resource group"));
const waits = (cmd: Command) => cmd.option('--no-wait', 'do not wait for the operation; print its id instead');

function printLab(l: Lab): void {
  const p = l.properties;
  const vp = p.virtualMachineProfile;
  printFields([
    ['Name', l.name],
    ['Title', p.title],
    ['Resource group', groupOf(l.id)],
    ['Region', l.location],
    ['State', `${p.state}${p.provisioningState !== 'Succeeded' ? ` (${p.provisioningState})` : ''}`],
    ['Lab account', p.labPlanId?.split('/').pop()],
    ['Image', `${vp.imageReference.id.split('/').pop()} ${vp.imageReference.exactVersion ?? ''}`],
    ['Template', vp.createOption === 'TemplateVM' ? 'yes' : 'no (student VMs are made from the image)'],
    ['Size', vp.sku.name],
    ['Seats', vp.sku.capacity],
    ['Quota per student', vp.usageQuota],
    ['Admin user', vp.adminUser?.username ?? '(the image’s own accounts)'],
    ['Registration code', p.securityProfile?.registrationCode],
    ['Created', `${shortTime(l.systemData?.createdAt) ?? '-'} by ${l.systemData?.createdBy ?? '-'}`],
  ]);
}

async function showLab(ctx: Context, opts: Scope, name: string, line?: string): Promise<void> {
  const l = await ctx.client.getLab(await ctx.subscription(), opts.resourceGroup, name);
  if (opts.output === 'json') return printJson(l);
  if (line) process.stdout.write(`${line}\n\n`);
  printLab(l);
}

const connect = (v: LabVm) => {
  const c = v.properties.connectionProfile;
  if (c?.sshAuthority) {
    const [host, port] = c.sshAuthority.split(':');
    return `ssh -p ${port} ${c.adminUsername ?? 'USER'}@${host}`;
  }
  return c?.rdpAuthority ? `RDP ${c.rdpAuthority}` : undefined;
};

interface CreateOptions extends WaitScope {
  account: string;
  accountGroup?: string;
  image: string;
  title?: string;
  size?: string;
  seats?: number;
  quota?: string;
  adminUser?: string;
  passwordFile?: string;
  noTemplate?: boolean;
  customData?: string;
}

async function createLab(name: string, opts: CreateOptions): Promise<void> {
  const ctx = loadContext();
  const sub = await ctx.subscription();
  const planRg = opts.accountGroup ?? opts.resourceGroup;
  const planId = `/subscriptions/${sub}/resourceGroups/${planRg}/providers/Microsoft.LabServices/labPlans/${opts.account}`;
  const password = opts.passwordFile
    ? readFileSync(opts.passwordFile === '-' ? 0 : opts.passwordFile, 'utf8').replace(/\r?\n$/, '')
    : process.env.LABFORGE_VM_PASSWORD || undefined;
  if (opts.adminUser && !password) {
    throw new CliError('--admin-user needs a password: give --password-file FILE or set LABFORGE_VM_PASSWORD.', EXIT.usage);
  }
  const r = await ctx.client.putLab(sub, opts.resourceGroup, name, {
    properties: {
      labPlanId: planId,
      ...(opts.title ? { title: opts.title } : {}),
      virtualMachineProfile: {
        createOption: opts.noTemplate ? 'Image' : 'TemplateVM',
        imageReference: { id: opts.image.startsWith('/') ? opts.image : `${planId}/images/${opts.image}` },
        sku: { ...(opts.size ? { name: opts.size } : {}), capacity: opts.seats ?? 0 },
        ...(opts.quota ? { usageQuota: opts.quota } : {}),
        ...(opts.adminUser ? { adminUser: { username: opts.adminUser, password } } : {}),
        ...(opts.customData ? { customData: Buffer.from(readFileSync(opts.customData, 'utf8')).toString('base64') } : {}),
      },
    },
  });
  say(opts, `Creating lab ${name}${opts.noTemplate ? '' : ' and starting its template VM'}…`);
  if (!(await followOperation(ctx, r.operationUrl, opts, `Creating lab ${name}`))) return;
  await showLab(ctx, opts, name, `Lab ${name} is ready${opts.noTemplate ? '' : '; its template VM is running'}.`);
}

export function registerLab(program: Command): void {
  const lab = program.command('lab').description('Labs: create from a lab account image, customise the template, export, publish, students');

  scoped(
    waits(
      lab
        .command('create')
        .argument('<name>', 'lab name')
        .description("Create a lab from one of a lab account's images; its template VM is created and started")
        .requiredOption('--account <account>', 'the lab account (lab plan)')
        .option('--account-group <group>', "the lab account's resource group (default: the lab's)")
        .requiredOption('--image <image>', "the image's name as `labforge account image list` shows it, or a full id")
        .option('--title <title>', 'title shown to students')
        .option('--size <size>', 'VM size, e.g. Standard_B1s')
        .option('--seats <n>', 'number of student VMs to publish', (v: string) => Number(v))
        .option('--quota <duration>', 'hours each student may use, e.g. PT10H (default 10 hours)')
        .option('--admin-user <name>', 'admin user for Generalized images (Specialized images keep their own accounts)')
        .option('--password-file <file>', "file holding the admin password ('-' for standard input); or LABFORGE_VM_PASSWORD")
        .option('--no-template', 'no template VM: student VMs are made from the image as it is')
        .option('--custom-data <file>', 'a #cloud-config file the template applies at first boot (Generalized images)'),
    ),
  ).action((name: string, opts: CreateOptions & { template: boolean }) => createLab(name, { ...opts, noTemplate: !opts.template }));

  withOutput(
    lab.command('list').description('List labs (students: the labs they are in)').option('-g, --resource-group <group>', 'only this resource group'),
  ).action(async (opts: OutputOptions & { resourceGroup?: string }) => {
    const ctx = loadContext();
    const labs = await ctx.client.listLabs(await ctx.subscription(), opts.resourceGroup);
    if (opts.output === 'json') return printJson(labs);
    printTable(
      ['NAME', 'GROUP', 'STATE', 'IMAGE', 'SEATS', 'TITLE'],
      labs.map((l) => [
        l.name,
        groupOf(l.id),
        l.properties.state,
        `${l.properties.virtualMachineProfile.imageReference.id.split('/').pop()} ${l.properties.virtualMachineProfile.imageReference.exactVersion ?? ''}`,
        l.properties.virtualMachineProfile.sku.capacity,
        l.properties.title,
      ]),
      'No labs. Create one with `labforge lab create NAME -g GROUP --account ACCOUNT --image IMAGE`.',
    );
  });

  scoped(lab.command('show').argument('<name>', 'lab name').description('Show a lab')).action(async (name: string, opts: Scope) =>
    showLab(loadContext(), opts, name),
  );

  scoped(
    waits(
      lab
        .command('publish')
        .argument('<name>', 'lab name')
        .description("Create the student VMs from the template's current disk. Publishing again replaces them: students' changes are lost.")
        .option('--seats <n>', 'change the number of student VMs first', (v: string) => Number(v)),
    ),
  ).action(async (name: string, opts: WaitScope & { seats?: number }) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const current = await ctx.client.getLab(sub, opts.resourceGroup, name);
    if (opts.seats !== undefined) {
      const scaled = await ctx.client.putLab(
        sub,
        opts.resourceGroup,
        name,
        { properties: { virtualMachineProfile: { sku: { capacity: opts.seats } } } },
        'PATCH',
      );
      // Scaling a published lab is an operation of its own: publishing waits for it (the lab takes one at a time).
      await followOperation(ctx, scaled.operationUrl, { ...opts, wait: true }, `Scaling lab ${name}`);
    }
    if (current.properties.state === 'Published') {
      process.stderr.write(`labforge: lab ${name} was published before: its student VMs are replaced and what students changed on them is lost.\n`);
    }
    const r = await ctx.client.publishLab(sub, opts.resourceGroup, name);
    if (!(await followOperation(ctx, r.operationUrl, opts, `Publishing lab ${name}`))) return;
    await showLab(ctx, opts, name, `Lab ${name} is published.`);
  });

  scoped(
    waits(
      lab
        .command('scale')
        .argument('<name>', 'lab name')
        .argument('<seats>', 'the new number of student VMs', (v: string) => Number(v))
        .description('Add or remove student VMs of a published lab (the highest-numbered go first)'),
    ),
  ).action(async (name: string, seats: number, opts: WaitScope) => {
    const ctx = loadContext();
    const r = await ctx.client.putLab(
      await ctx.subscription(),
      opts.resourceGroup,
      name,
      { properties: { virtualMachineProfile: { sku: { capacity: seats } } } },
      'PATCH',
    );
    if (!(await followOperation(ctx, r.operationUrl, opts, `Scaling lab ${name}`))) return say(opts, `Lab ${name} now has ${seats} seats.`);
    await showLab(ctx, opts, name, `Lab ${name} now has ${seats} student VMs.`);
  });

  scoped(lab.command('delete').argument('<name>', 'lab name').description('Delete a lab with its template and student VMs')).action(
    async (name: string, opts: Scope) => {
      const ctx = loadContext();
      const deleted = await ctx.client.deleteLab(await ctx.subscription(), opts.resourceGroup, name);
      say(opts, deleted ? `Deleted lab ${name} and its VMs.` : `There was no lab ${name}.`);
    },
  );

  // ---- template ----
  const template = lab.command('template').description("The lab's template VM: start, stop, reset, export to the gallery");
  for (const [cmd, action, doing] of [
    ['start', 'start', 'Starting'],
    ['stop', 'stop', 'Stopping'],
    ['reset', 'reimage', 'Resetting'],
  ] as const) {
    scoped(
      waits(
        template
          .command(cmd)
          .argument('<lab>', 'lab name')
          .description(`${doing} the template VM${cmd === 'reset' ? ' (back to the image: its changes are lost)' : ''}`),
      ),
    ).action(async (labName: string, opts: WaitScope) => {
      const ctx = loadContext();
      const r = await ctx.client.labVmAction(await ctx.subscription(), opts.resourceGroup, labName, 'template', action);
      if (await followOperation(ctx, r.operationUrl, opts, `${doing} the template of ${labName}`)) say(opts, `The template of lab ${labName}: done.`);
    });
  }
  scoped(
    waits(
      template
        .command('export')
        .argument('<lab>', 'lab name')
        .description("Save the template to the lab account's gallery as a Specialized image (only what changed is stored)")
        .option('--name <name>', 'name of the new image definition')
        .option('--update-existing', 'add a new version to the image the lab came from (or was last exported to) instead'),
    ),
  ).action(async (labName: string, opts: WaitScope & { name?: string; updateExisting?: boolean }) => {
    if (!opts.name && !opts.updateExisting) throw new CliError('Give --name NAME for a new image, or --update-existing.', EXIT.usage);
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const l = await ctx.client.getLab(sub, opts.resourceGroup, labName);
    const planId = l.properties.labPlanId as string;
    const parts = planId.split('/');
    const [planRg, plan] = [parts[4], parts[8]];
    const r = await ctx.client.saveImage(sub, planRg as string, plan as string, {
      ...(opts.name ? { name: opts.name } : {}),
      labVirtualMachineId: `${l.id}/virtualMachines/template`,
      ...(opts.updateExisting ? { updateExisting: true } : {}),
    });
    say(opts, `Exporting the template of ${labName} as ${r.body.imageId.split('/').pop()} version ${r.body.version}…`);
    if (!(await followOperation(ctx, r.operationUrl, opts, `Exporting the template of ${labName}`))) return;
    if (opts.output === 'json') return printJson(r.body);
    process.stdout.write(
      `Saved the template of lab ${labName} as image ${r.body.imageId.split('/').pop()}, version ${r.body.version}. New labs from it get this version.\n`,
    );
  });

  // ---- VMs ----
  const vm = lab.command('vm').description("A lab's VMs (students: their own)");
  scoped(vm.command('list').argument('<lab>', 'lab name').description('List the template and student VMs with their state and owner')).action(
    async (labName: string, opts: Scope) => {
      const ctx = loadContext();
      const vms = await ctx.client.listLabVms(await ctx.subscription(), opts.resourceGroup, labName);
      if (opts.output === 'json') return printJson(vms);
      printTableWithNotes(
        ['NAME', 'TYPE', 'STATE', 'STUDENT', 'CONNECT'],
        vms.map((v) => ({
          cells: [v.name, v.properties.vmType, v.properties.state, v.properties.claimedByUserId, connect(v)],
          noteColumn: 2,
          ...(v.properties.statusCode ? { note: `${v.name}: ${reasonText(v.properties)}` } : {}),
        })),
        'No VMs: publish the lab to create student VMs.',
      );
    },
  );
  for (const [cmd, doing] of [
    ['start', 'Starting'],
    ['stop', 'Stopping'],
    ['reimage', 'Reimaging'],
    ['redeploy', 'Redeploying'],
  ] as const) {
    scoped(waits(vm.command(cmd).argument('<lab>', 'lab name').argument('<vm>', 'VM name (template, 0, 1, …)').description(`${doing} a lab VM`))).action(
      async (labName: string, vmName: string, opts: WaitScope) => {
        const ctx = loadContext();
        const r = await ctx.client.labVmAction(await ctx.subscription(), opts.resourceGroup, labName, vmName, cmd);
        if (await followOperation(ctx, r.operationUrl, opts, `${doing} VM ${vmName} of ${labName}`)) say(opts, `VM ${vmName} of lab ${labName}: done.`);
      },
    );
  }
  scoped(
    vm
      .command('connect')
      .argument('<lab>', 'lab name')
      .argument('<vm>', 'VM name')
      .description('How to connect to a running lab VM: SSH/RDP address and the console URLs'),
  ).action(async (labName: string, vmName: string, opts: Scope) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const v = await ctx.client.getLabVm(sub, opts.resourceGroup, labName, vmName);
    if (v.properties.state !== 'Running')
      throw new CliError(`VM ${vmName} is ${v.properties.state}; start it with \`labforge lab vm start ${labName} ${vmName}\`.`, EXIT.conflict);
    const c = await ctx.client.labVmConsole(sub, opts.resourceGroup, labName, vmName);
    if (opts.output === 'json') return printJson({ vm: v, console: c });
    printFields([
      ['Connect', connect(v)],
      ['Console (VNC, noVNC)', c.vncUrl],
      ['Serial console', c.serialUrl],
      ['Console URLs valid until', c.expiresAt],
    ]);
  });

  // ---- users ----
  const user = lab.command('user').description("A lab's students");
  scoped(
    user
      .command('add')
      .argument('<lab>', 'lab name')
      .argument('<email>', "the student's email address (they sign in with it)")
      .description('Add a student; a published lab gives them a free seat at once')
      .option('--name <name>', 'user name in the lab (default: the part of the email before @)')
      .option('--invite', 'mark them invited and print the registration code to send them'),
  ).action(async (labName: string, email: string, opts: Scope & { name?: string; invite?: boolean }) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const name = opts.name ?? email.split('@')[0]?.replace(/[^\w.-]/g, '-') ?? email;
    let u: LabUser | InvitedLabUser = await ctx.client.putLabUser(sub, opts.resourceGroup, labName, name, email);
    if (opts.invite) u = await ctx.client.inviteLabUser(sub, opts.resourceGroup, labName, name);
    if (opts.output === 'json') return printJson(u);
    const code = 'registrationCode' in u ? u.registrationCode : undefined;
    say(opts, `Added ${email} to lab ${labName} as ${name}.${code ? ` Registration code to send them: ${code}` : ''}`);
  });
  scoped(user.command('list').argument('<lab>', 'lab name').description("List a lab's students with their usage")).action(
    async (labName: string, opts: Scope) => {
      const ctx = loadContext();
      const users = await ctx.client.listLabUsers(await ctx.subscription(), opts.resourceGroup, labName);
      if (opts.output === 'json') return printJson(users);
      printTable(
        ['NAME', 'EMAIL', 'INVITATION', 'REGISTRATION', 'USED'],
        users.map((u) => [u.name, u.properties.email, u.properties.invitationState, u.properties.registrationState, u.properties.totalUsage]),
        'No students yet. Add one with `labforge lab user add LAB EMAIL -g GROUP`.',
      );
    },
  );
}
