// `labforge version …`: image versions of an image definition and where they
// have been replicated to.
import type { Command } from 'commander';
import type { ImageVersion } from '../../client/api-client.js';
import { loadContext } from '../context.js';
import { formatTable, type OutputOptions, printFields, printJson, printTable, shortTime, withOutput } from '../output.js';

interface VersionScope extends OutputOptions {
  gallery: string;
  image: string;
  resourceGroup: string;
}

function scoped(cmd: Command): Command {
  return withOutput(
    cmd
      .requiredOption('--gallery <gallery>', 'gallery name')
      .requiredOption('--image <image>', 'image definition name')
      .requiredOption('-g, --resource-group <group>', "the gallery's resource group"),
  );
}

const regionsOf = (v: ImageVersion) => (v.properties.publishingProfile?.targetRegions ?? []).map((r) => r.name).join(',');

export function printVersion(v: ImageVersion): void {
  const pp = v.properties.publishingProfile;
  const disk = v.properties.storageProfile?.osDiskImage;
  printFields([
    ['Version', v.name],
    ['Image', /\/images\/([^/]+)/i.exec(v.id)?.[1]],
    ['Location', v.location],
    ['State', v.properties.provisioningState],
    ['Published', shortTime(pp?.publishedDate)],
    ['Excluded from latest', pp?.excludeFromLatest ? 'yes' : 'no'],
    ['End of life', pp?.endOfLifeDate?.slice(0, 10)],
    ['OS disk', disk?.sizeInGB !== undefined ? `${disk.sizeInGB} GB` : undefined],
    ['Data disks', v.properties.storageProfile?.dataDiskImages?.length || undefined],
    ['Target regions', regionsOf(v)],
    ['Replication', v.properties.replicationStatus?.aggregatedState],
    ['Id', v.id],
  ]);
  const summary = v.properties.replicationStatus?.summary ?? [];
  if (summary.length) {
    process.stdout.write(
      `\n${formatTable(
        ['REGION', 'STATE', 'PROGRESS', 'DETAILS'],
        summary.map((s) => [s.region, s.state, s.progress !== undefined ? `${s.progress}%` : undefined, s.details]),
      )}\n`,
    );
  }
}

export function registerVersion(program: Command): void {
  const version = program.command('version').description('List and show image versions of an image definition');

  scoped(version.command('list').description('List the versions of an image definition')).action(async (opts: VersionScope) => {
    const ctx = loadContext();
    const list = await ctx.client.listVersions(await ctx.subscription(), opts.resourceGroup, opts.gallery, opts.image, { expandReplication: true });
    if (opts.output === 'json') return printJson(list);
    printTable(
      ['VERSION', 'STATE', 'REPLICATION', 'REGIONS', 'PUBLISHED', 'IN LATEST'],
      list.map((v) => [
        v.name,
        v.properties.provisioningState,
        v.properties.replicationStatus?.aggregatedState,
        regionsOf(v),
        shortTime(v.properties.publishingProfile?.publishedDate),
        v.properties.publishingProfile?.excludeFromLatest ? 'no' : 'yes',
      ]),
      `Image definition '${opts.image}' has no versions yet.`,
    );
  });

  scoped(
    version
      .command('show')
      .argument('<version>', "version number like 1.0.0, or 'latest' for the newest one not excluded from latest")
      .description('Show one image version with its replication state per region'),
  ).action(async (name: string, opts: VersionScope) => {
    const ctx = loadContext();
    const v = await ctx.client.getVersion(await ctx.subscription(), opts.resourceGroup, opts.gallery, opts.image, name, { expandReplication: true });
    if (opts.output === 'json') return printJson(v);
    printVersion(v);
  });
}
