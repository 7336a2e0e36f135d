// `labforge account …`: lab accounts (lab plans): create, attach or detach the
// shared gallery, and choose which images creators may use.
import type { Command } from 'commander';
import type { LabPlan } from '../../contract/index.js';
import { loadContext } from '../context.js';
import { groupOf, type OutputOptions, printFields, printJson, printTable, say, shortTime, withOutput } from '../output.js';

interface Scope extends OutputOptions {
  resourceGroup: string;
}

const scoped = (cmd: Command) => withOutput(cmd.requiredOption('-g, --resource-group <group>', "the lab account's resource group"));
const galleryId = (sub: string, rg: string, gallery: string) =>
  gallery.startsWith('/') ? gallery : `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/galleries/${gallery}`;

function printPlan(p: LabPlan): void {
  printFields([
    ['Name', p.name],
    ['Resource group', groupOf(p.id)],
    ['Region', p.location],
    ['Allowed regions', p.properties.allowedRegions?.length ? p.properties.allowedRegions.join(', ') : 'any'],
    ['Attached gallery', p.properties.sharedGalleryId ?? 'none (attach one with `labforge account attach-gallery`)'],
    ['Created', `${shortTime(p.systemData?.createdAt) ?? '-'} by ${p.systemData?.createdBy ?? '-'}`],
    ['Id', p.id],
  ]);
}

export function registerAccount(program: Command): void {
  const account = program.command('account').description('Lab accounts (lab plans): regions, the attached gallery, and the images creators may use');

  scoped(
    account
      .command('create')
      .argument('<name>', 'lab account name')
      .description('Create a lab account (admins)')
      .option('--location <region>', "its region (default: the resource group's)")
      .option('--allowed-region <region>', 'a region labs may use; repeat for more (default: any)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--gallery <gallery>', 'attach this gallery (a name in the same resource group, or a full id)'),
  ).action(async (name: string, opts: Scope & { location?: string; allowedRegion?: string[]; gallery?: string }) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const p = await ctx.client.putLabPlan(sub, opts.resourceGroup, name, {
      ...(opts.location ? { location: opts.location } : {}),
      properties: {
        ...(opts.allowedRegion ? { allowedRegions: opts.allowedRegion } : {}),
        ...(opts.gallery ? { sharedGalleryId: galleryId(sub, opts.resourceGroup, opts.gallery) } : {}),
      },
    });
    if (opts.output === 'json') return printJson(p);
    process.stdout.write(`Created lab account ${name}.\n\n`);
    printPlan(p);
  });

  withOutput(account.command('list').description('List lab accounts').option('-g, --resource-group <group>', 'only this resource group')).action(
    async (opts: OutputOptions & { resourceGroup?: string }) => {
      const ctx = loadContext();
      const plans = await ctx.client.listLabPlans(await ctx.subscription(), opts.resourceGroup);
      if (opts.output === 'json') return printJson(plans);
      printTable(
        ['NAME', 'GROUP', 'REGION', 'GALLERY'],
        plans.map((p) => [p.name, groupOf(p.id), p.location, p.properties.sharedGalleryId?.split('/').pop()]),
        'No lab accounts. An admin creates one with `labforge account create NAME -g GROUP --gallery GALLERY`.',
      );
    },
  );

  scoped(account.command('show').argument('<name>', 'lab account name').description('Show a lab account')).action(async (name: string, opts: Scope) => {
    const ctx = loadContext();
    const p = await ctx.client.getLabPlan(await ctx.subscription(), opts.resourceGroup, name);
    if (opts.output === 'json') return printJson(p);
    printPlan(p);
  });

  scoped(
    account
      .command('attach-gallery')
      .argument('<name>', 'lab account name')
      .argument('<gallery>', 'gallery name (in the same resource group) or full id')
      .description('Attach a gallery: its images can then be enabled for creators (admins). Replaces the attached one.'),
  ).action(async (name: string, gallery: string, opts: Scope) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const p = await ctx.client.putLabPlan(
      sub,
      opts.resourceGroup,
      name,
      { properties: { sharedGalleryId: galleryId(sub, opts.resourceGroup, gallery) } },
      'PATCH',
    );
    if (opts.output === 'json') return printJson(p);
    say(opts, `Attached gallery ${gallery} to lab account ${name}. Enable its images with \`labforge account image enable\`.`);
  });

  scoped(
    account
      .command('detach-gallery')
      .argument('<name>', 'lab account name')
      .description('Detach the gallery (admins); labs already made from its images keep working'),
  ).action(async (name: string, opts: Scope) => {
    const ctx = loadContext();
    const p = await ctx.client.putLabPlan(await ctx.subscription(), opts.resourceGroup, name, { properties: { sharedGalleryId: null } }, 'PATCH');
    if (opts.output === 'json') return printJson(p);
    say(opts, `Detached the gallery from lab account ${name}; existing labs are not affected.`);
  });

  scoped(account.command('delete').argument('<name>', 'lab account name').description('Delete a lab account that has no labs (admins)')).action(
    async (name: string, opts: Scope) => {
      const ctx = loadContext();
      const deleted = await ctx.client.deleteLabPlan(await ctx.subscription(), opts.resourceGroup, name);
      say(opts, deleted ? `Deleted lab account ${name}.` : `There was no lab account ${name}.`);
    },
  );

  const image = account.command('image').description("The images a lab account offers to creators (built-in ones and its gallery's)");
  scoped(
    image
      .command('list')
      .argument('<account>', 'lab account name')
      .description('List the images creators may use; --all (admins) also lists hidden ones with the reason')
      .option('--all', 'include images that are hidden from creators, with why'),
  ).action(async (accountName: string, opts: Scope & { all?: boolean }) => {
    const ctx = loadContext();
    const images = await ctx.client.listPlanImages(await ctx.subscription(), opts.resourceGroup, accountName, Boolean(opts.all));
    if (opts.output === 'json') return printJson(images);
    printTable(
      ['NAME', 'ENABLED', 'OS', 'STATE', 'VERSION', 'SIZE GB', 'REGIONS', ...(opts.all ? ['HIDDEN BECAUSE'] : [])],
      images.map((i) => [
        i.name,
        i.properties.enabledState === 'Enabled' ? 'yes' : 'no',
        i.properties.osType,
        i.properties.osState,
        i.properties.version,
        i.properties.osDiskSizeGB,
        i.properties.availableRegions?.join(', '),
        ...(opts.all ? [i.properties.hiddenReasons?.join(', ') || '-'] : []),
      ]),
      opts.all
        ? 'This lab account has no images: attach a gallery that has image definitions.'
        : 'No images are offered yet: an admin enables them with `labforge account image enable`.',
    );
  });
  for (const [cmd, state] of [
    ['enable', 'Enabled'],
    ['disable', 'Disabled'],
  ] as const) {
    scoped(
      image
        .command(cmd)
        .argument('<account>', 'lab account name')
        .argument('<image>', 'image name (as `account image list --all` shows it)')
        .description(`${cmd === 'enable' ? 'Offer' : 'Stop offering'} an image to creators (admins)`),
    ).action(async (accountName: string, imageName: string, opts: Scope) => {
      const ctx = loadContext();
      const i = await ctx.client.setPlanImage(await ctx.subscription(), opts.resourceGroup, accountName, imageName, state);
      if (opts.output === 'json') return printJson(i);
      const hidden = (i.properties.hiddenReasons ?? []).filter((r) => r !== 'Disabled');
      say(
        opts,
        `Image ${imageName} is ${state.toLowerCase()} in lab account ${accountName}.${state === 'Enabled' && hidden.length ? ` It is still not offered: ${hidden.join(', ')}.` : ''}`,
      );
    });
  }
}
