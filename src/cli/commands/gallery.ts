// `labforge gallery …`: create, list, show and delete image galleries.
import type { Command } from 'commander';
import { type ApiClient, ApiError } from '../../client/api-client.js';
import type { Gallery } from '../../contract/index.js';
import { loadContext } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { groupOf, type OutputOptions, printFields, printJson, printTable, say, shortTime, withOutput } from '../output.js';

interface GroupOption extends OutputOptions {
  resourceGroup: string;
}

/** Location of a new resource: the one asked for, else the first region of the server. */
export async function defaultLocation(client: ApiClient, sub: string, asked: string | undefined): Promise<string> {
  if (asked) return asked;
  const first = (await client.listLocations(sub))[0]?.name;
  if (!first) throw new CliError('The server lists no regions; give one with --location.', EXIT.failure);
  return first;
}

/** Creates the resource group when it does not exist yet; says so when it did. */
export async function ensureResourceGroup(client: ApiClient, sub: string, rg: string, location: string, opts: OutputOptions): Promise<void> {
  try {
    await client.getResourceGroup(sub, rg);
    return;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  await client.putResourceGroup(sub, rg, { location });
  say(opts, `Created resource group '${rg}' in ${location}.`);
}

export function printGallery(g: Gallery): void {
  printFields([
    ['Name', g.name],
    ['Resource group', groupOf(g.id)],
    ['Location', g.location],
    ['Description', g.properties.description ?? ''],
    ['Unique name', g.properties.identifier?.uniqueName],
    ['State', g.properties.provisioningState],
    ['Created', `${shortTime(g.systemData?.createdAt) ?? '-'} by ${g.systemData?.createdBy ?? '-'}`],
    ['Modified', `${shortTime(g.systemData?.lastModifiedAt) ?? '-'} by ${g.systemData?.lastModifiedBy ?? '-'}`],
    ['Id', g.id],
  ]);
}

export function registerGallery(program: Command): void {
  const gallery = program.command('gallery').description('Create, list, show and delete image galleries');

  withOutput(
    gallery
      .command('create')
      .argument('<name>', 'gallery name (letters, digits, dots and underscores)')
      .description('Create a gallery, and its resource group when that does not exist yet (admins only)')
      .requiredOption('-g, --resource-group <group>', 'resource group to create it in')
      .option('-l, --location <region>', "region (default: the server's first region)")
      .option('--description <text>', 'what the gallery is for, e.g. "Images for the networking course"'),
  ).action(async (name: string, opts: GroupOption & { location?: string; description?: string }) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const location = await defaultLocation(ctx.client, sub, opts.location);
    await ensureResourceGroup(ctx.client, sub, opts.resourceGroup, location, opts);
    let g: Gallery;
    try {
      g = await ctx.client.putGallery(
        sub,
        opts.resourceGroup,
        name,
        { location, ...(opts.description !== undefined ? { properties: { description: opts.description } } : {}) },
        // Refuse to overwrite: `create` must never silently replace an existing gallery's settings.
        { onlyIfNew: true },
      );
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        throw new CliError(
          `Gallery '${name}' already exists in resource group '${opts.resourceGroup}'. Choose another name, or see it with \`labforge gallery show ${name} -g ${opts.resourceGroup}\`.`,
          EXIT.conflict,
        );
      }
      throw err;
    }
    if (opts.output === 'json') return printJson(g);
    say(opts, `Created gallery '${g.name}' in resource group '${opts.resourceGroup}' (${g.location}).`);
  });

  withOutput(
    gallery
      .command('list')
      .description('List galleries, in one resource group or in the whole subscription')
      .option('-g, --resource-group <group>', 'only this resource group'),
  ).action(async (opts: OutputOptions & { resourceGroup?: string }) => {
    const ctx = loadContext();
    const list = await ctx.client.listGalleries(await ctx.subscription(), opts.resourceGroup);
    if (opts.output === 'json') return printJson(list);
    printTable(
      ['NAME', 'RESOURCE GROUP', 'LOCATION', 'STATE', 'DESCRIPTION'],
      list.map((g) => [g.name, groupOf(g.id), g.location, g.properties.provisioningState, g.properties.description]),
      opts.resourceGroup
        ? `No galleries in resource group '${opts.resourceGroup}'.`
        : 'No galleries yet. Create one with `labforge gallery create NAME -g GROUP`.',
    );
  });

  withOutput(
    gallery
      .command('show')
      .argument('<name>', 'gallery name')
      .description('Show one gallery')
      .requiredOption('-g, --resource-group <group>', 'its resource group'),
  ).action(async (name: string, opts: GroupOption) => {
    const ctx = loadContext();
    const g = await ctx.client.getGallery(await ctx.subscription(), opts.resourceGroup, name);
    if (opts.output === 'json') return printJson(g);
    printGallery(g);
  });

  withOutput(
    gallery
      .command('delete')
      .argument('<name>', 'gallery name')
      .description('Delete an empty gallery (admins only; delete its image definitions first)')
      .requiredOption('-g, --resource-group <group>', 'its resource group'),
  ).action(async (name: string, opts: GroupOption) => {
    const ctx = loadContext();
    const deleted = await ctx.client.deleteGallery(await ctx.subscription(), opts.resourceGroup, name);
    if (opts.output === 'json') return printJson({ name, resourceGroup: opts.resourceGroup, deleted });
    say(opts, deleted ? `Deleted gallery '${name}'.` : `Gallery '${name}' did not exist in resource group '${opts.resourceGroup}'; nothing to delete.`);
  });
}
