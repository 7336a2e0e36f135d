// `labforge version …`: image versions of an image definition and where they
// have been replicated to; creating one uploads its disks (resumably) first.
import { statSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { ApiError } from '../../client/api-client.js';
import { API_VERSION, type ImageVersion, type ImageVersionInput, type TargetRegionInput } from '../../contract/index.js';
import { type Context, loadContext } from '../context.js';
import { downloadTo } from '../download.js';
import { CliError, EXIT } from '../errors.js';
import { formatTable, type OutputOptions, printFields, printJson, printTable, say, shortTime, withOutput } from '../output.js';
import { forgetUpload, type UploadedFile, uploadFile } from '../upload.js';
import { followOperation } from './operation.js';

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

function parseVersionName(v: string): string {
  if (!/^\d{1,9}\.\d{1,9}\.\d{1,9}$/.test(v.trim())) throw new InvalidArgumentError('Give a version number like 1.0.0 (three whole numbers).');
  return v.trim();
}

/** `--target-region site-b=2` (or just `site-b`, one replica), repeatable. */
function collectRegion(v: string, previous: TargetRegionInput[] = []): TargetRegionInput[] {
  const m = /^([^=\s]+)(?:=(\d+))?$/.exec(v.trim());
  const count = m?.[2] !== undefined ? Number(m[2]) : 1;
  if (!m || !Number.isSafeInteger(count) || count < 1) throw new InvalidArgumentError("Give a region as NAME or NAME=REPLICAS, e.g. 'site-b=2'.");
  const name = m[1] as string;
  if (previous.some((r) => r.name.toLowerCase() === name.toLowerCase())) throw new InvalidArgumentError(`Region '${name}' is given twice.`);
  return [...previous, { name, regionalReplicaCount: count }];
}

function collectFile(v: string, previous: string[] = []): string[] {
  return [...previous, v];
}

function parseBoolean(v: string): boolean {
  const s = v.trim().toLowerCase();
  if (['true', 'yes', '1'].includes(s)) return true;
  if (['false', 'no', '0'].includes(s)) return false;
  throw new InvalidArgumentError("Use 'true' or 'false'.");
}

/** The version's own region first (with the count asked for, else `homeCount`), then the others as given. */
function withHomeRegion(home: string, asked: TargetRegionInput[], homeCount?: number): TargetRegionInput[] {
  const own = asked.find((r) => r.name.toLowerCase() === home.toLowerCase());
  const first: TargetRegionInput = own ? { ...own, name: home } : { name: home, ...(homeCount !== undefined ? { regionalReplicaCount: homeCount } : {}) };
  return [first, ...asked.filter((r) => r !== own)];
}

interface WaitOptions extends VersionScope {
  wait: boolean;
}

async function showResult(ctx: Context, sub: string, opts: VersionScope, name: string, line: string): Promise<void> {
  const v = await ctx.client.getVersion(sub, opts.resourceGroup, opts.gallery, opts.image, name, { expandReplication: true });
  if (opts.output === 'json') return printJson(v);
  process.stdout.write(`${line}\n\n`);
  printVersion(v);
}

interface CreateOptions extends WaitOptions {
  version: string;
  file: string;
  dataDisk?: string[];
  targetRegion?: TargetRegionInput[];
  excludeFromLatest?: boolean;
}

interface UpdateOptions extends WaitOptions {
  targetRegion?: TargetRegionInput[];
  excludeFromLatest?: boolean;
}

async function createVersion(opts: CreateOptions): Promise<void> {
  const ctx = loadContext();
  const sub = await ctx.subscription();
  const { resourceGroup: rg, gallery, image, version: name } = opts;
  const files = [opts.file, ...(opts.dataDisk ?? [])];
  // Refuse what would fail after a long upload before sending a byte.
  for (const f of files) {
    let isFile = false;
    try {
      isFile = statSync(f).isFile();
    } catch (err) {
      throw new CliError(`Cannot read ${f}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}.`, EXIT.usage);
    }
    if (!isFile) throw new CliError(`${f} is not a file.`, EXIT.usage);
  }
  const g = await ctx.client.getGallery(sub, rg, gallery);
  await ctx.client.getImage(sub, rg, gallery, image);
  const existing = await ctx.client.getVersion(sub, rg, gallery, image, name).catch((err: unknown) => {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  });
  if (existing) {
    throw new CliError(
      `Image version ${name} of '${image}' already exists (${existing.properties.provisioningState ?? 'unknown state'}). Versions are immutable: pick a new number, or delete it first with \`labforge version delete ${name}\`.`,
      EXIT.conflict,
    );
  }

  const uploaded: UploadedFile[] = [];
  for (const f of files) uploaded.push(await uploadFile(ctx.client, f));
  const [os, ...data] = uploaded as [UploadedFile, ...UploadedFile[]];
  const body: ImageVersionInput = {
    location: g.location,
    properties: {
      publishingProfile: {
        targetRegions: withHomeRegion(g.location, opts.targetRegion ?? []),
        ...(opts.excludeFromLatest ? { excludeFromLatest: true } : {}),
      },
      storageProfile: {
        osDiskImage: { source: { uri: os.url } },
        ...(data.length ? { dataDiskImages: data.map((d, lun) => ({ lun, source: { uri: d.url } })) } : {}),
      },
    },
  };
  const r = await ctx.client.putVersion(sub, rg, gallery, image, name, body, { onlyIfNew: true });
  // The server took the uploads (it imports and then removes them): nothing is left to resume.
  for (const u of uploaded) forgetUpload(u.key);
  const waited = await followOperation(ctx, r.operationUrl, opts, `Creating image version ${name}`);
  if (!waited && r.operationUrl) return;
  await showResult(ctx, sub, opts, name, `Created image version ${name} of '${image}'.`);
}

async function updateVersion(name: string, opts: UpdateOptions): Promise<void> {
  if (opts.targetRegion === undefined && opts.excludeFromLatest === undefined) {
    throw new CliError('Nothing to change: give --target-region or --exclude-from-latest.', EXIT.usage);
  }
  const ctx = loadContext();
  const sub = await ctx.subscription();
  const { resourceGroup: rg, gallery, image } = opts;
  const current = await ctx.client.getVersion(sub, rg, gallery, image, name);
  const homeCount = current.properties.publishingProfile?.targetRegions?.find(
    (t) => t.name.toLowerCase() === current.location.toLowerCase(),
  )?.regionalReplicaCount;
  const r = await ctx.client.patchVersion(sub, rg, gallery, image, current.name, {
    properties: {
      publishingProfile: {
        ...(opts.targetRegion ? { targetRegions: withHomeRegion(current.location, opts.targetRegion, homeCount) } : {}),
        ...(opts.excludeFromLatest !== undefined ? { excludeFromLatest: opts.excludeFromLatest } : {}),
      },
    },
  });
  const waited = await followOperation(ctx, r.operationUrl, opts, `Updating image version ${current.name}`);
  if (!waited && r.operationUrl) return;
  await showResult(ctx, sub, opts, current.name, `Updated image version ${current.name} of '${image}'.`);
}

async function deleteVersion(name: string, opts: WaitOptions): Promise<void> {
  const ctx = loadContext();
  const sub = await ctx.subscription();
  const r = await ctx.client.deleteVersion(sub, opts.resourceGroup, opts.gallery, opts.image, name);
  if (r.operationUrl && (await followOperation(ctx, r.operationUrl, opts, `Deleting image version ${name}`)) === false) return;
  if (opts.output === 'json') return printJson({ name, deleted: r.deleted });
  say(opts, r.deleted ? `Deleted image version ${name} of '${opts.image}'.` : `Image version ${name} of '${opts.image}' does not exist; nothing to delete.`);
}

export function registerVersion(program: Command): void {
  const version = program.command('version').description('Create, list, show, update and delete image versions of an image definition');

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

  scoped(
    version
      .command('create')
      .description('Upload disk files and create an image version from them, replicated to the given regions')
      .requiredOption('--version <version>', 'the new version number, like 1.0.0', parseVersionName)
      .requiredOption('--file <file>', 'the OS disk: a VHD, VHDX, qcow2, VMDK or raw file (an interrupted upload resumes when run again)')
      .option('--data-disk <file>', 'a data disk file; repeat for more (LUNs 0, 1, … in the order given)', collectFile)
      .option(
        '--target-region <name=count>',
        "replicate to this region with this many replicas, e.g. 'site-b=2'; repeat for more (the gallery's region is always included)",
        collectRegion,
      )
      .option('--exclude-from-latest', "do not use this version for 'latest'")
      .option('--no-wait', 'do not wait for the import and replication; print the operation id instead'),
  ).action(async (opts: CreateOptions) => createVersion(opts));

  scoped(
    version
      .command('update')
      .argument('<version>', 'version number like 1.0.0')
      .description("Change an image version's target regions or whether it counts for 'latest'")
      .option(
        '--target-region <name=count>',
        "the regions to replicate to, e.g. 'site-b=2'; repeat for more; replaces the list (the version's own region is always kept)",
        collectRegion,
      )
      .option('--exclude-from-latest <bool>', "true: never use this version for 'latest'; false: use it again", parseBoolean)
      .option('--no-wait', 'do not wait for replication to new regions; print the operation id instead'),
  ).action(async (name: string, opts: UpdateOptions) => updateVersion(name, opts));

  scoped(
    version
      .command('delete')
      .argument('<version>', 'version number like 1.0.0')
      .description('Delete an image version and its replicas in every region')
      .option('--no-wait', 'do not wait when the server deletes in the background; print the operation id instead'),
  ).action(async (name: string, opts: WaitOptions) => deleteVersion(name, opts));

  scoped(
    version
      .command('download')
      .argument('<version>', "version number like 1.0.0, or 'latest'")
      .description('Download a disk of a version: a fixed VHD for Hyper-V or Azure, raw, or qcow2')
      .option('--format <format>', 'vhd (fixed, whole MiB, for Hyper-V and Azure), raw or qcow2', 'vhd')
      .option('--disk <disk>', "which disk: 'os' or 'data-<lun>'", 'os')
      .option('--region <region>', "the region to read from (default: the gallery's)")
      .option('-f, --file <path>', 'where to write it (default: <image>-<version>-<disk>.<format> in this folder)'),
  ).action(async (name: string, opts: VersionScope & { format: string; disk: string; region?: string; file?: string }) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const ext = opts.format === 'raw' ? 'img' : opts.format;
    const file = opts.file ?? `${opts.image}-${name}-${opts.disk}.${ext}`;
    const path = `/subscriptions/${sub}/resourceGroups/${opts.resourceGroup}/providers/Microsoft.Compute/galleries/${opts.gallery}/images/${opts.image}/versions/${name}/export`;
    const bytes = await downloadTo(ctx.client, path, { 'api-version': API_VERSION.compute, format: opts.format, disk: opts.disk, region: opts.region }, file);
    if (opts.output === 'json') return printJson({ file, bytes, format: opts.format });
    say(opts, `Saved ${opts.disk} disk of ${opts.image} ${name} as ${opts.format} in ${file} (${(bytes / 2 ** 20).toFixed(1)} MiB).`);
  });
}
