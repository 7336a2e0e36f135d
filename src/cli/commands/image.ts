// `labforge image …`: image definitions (what an image is: OS, generation,
// publisher/offer/sku) inside a gallery.
import { type Command, InvalidArgumentError } from 'commander';
import { ApiError } from '../../client/api-client.js';
import type { GalleryImage, GalleryImageInputProperties, Range } from '../../contract/index.js';
import { loadContext } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { groupOf, type OutputOptions, printFields, printJson, printTable, say, shortTime, withOutput } from '../output.js';
import { parseWholeNumber } from './token.js';

/** Accepts a value from a fixed list in any letter case and returns its canonical spelling. */
function oneOf(values: readonly string[]) {
  return (v: string): string => {
    const hit = values.find((x) => x.toLowerCase() === v.toLowerCase());
    if (!hit) throw new InvalidArgumentError(`Use one of: ${values.join(', ')}.`);
    return hit;
  };
}

interface ImageScope extends OutputOptions {
  gallery: string;
  resourceGroup: string;
}

interface CreateOptions extends ImageScope {
  osType: string;
  osState: string;
  publisher: string;
  offer: string;
  sku: string;
  hyperVGeneration?: string;
  architecture?: string;
  description?: string;
  endOfLife?: string;
  minVcpus?: number;
  maxVcpus?: number;
  minMemory?: number;
  maxMemory?: number;
}

const range = (min?: number, max?: number): Range | undefined =>
  min === undefined && max === undefined ? undefined : { ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };

const rangeText = (r: Range | undefined, unit: string) => {
  if (!r || (r.min === undefined && r.max === undefined)) return undefined;
  if (r.min !== undefined && r.max !== undefined) return `${r.min} to ${r.max} ${unit}`;
  return r.min !== undefined ? `at least ${r.min} ${unit}` : `at most ${r.max} ${unit}`;
};

/** Adds --gallery and --resource-group, which every image command needs. */
function scoped(cmd: Command): Command {
  return withOutput(cmd.requiredOption('--gallery <gallery>', 'gallery name').requiredOption('-g, --resource-group <group>', "the gallery's resource group"));
}

export function printImage(i: GalleryImage): void {
  const p = i.properties;
  printFields([
    ['Name', i.name],
    ['Gallery', /\/galleries\/([^/]+)/i.exec(i.id)?.[1]],
    ['Resource group', groupOf(i.id)],
    ['Location', i.location],
    ['OS type', p.osType],
    ['OS state', p.osState],
    ['Hyper-V generation', p.hyperVGeneration],
    ['Architecture', p.architecture],
    ['Publisher', p.identifier?.publisher],
    ['Offer', p.identifier?.offer],
    ['SKU', p.identifier?.sku],
    ['Description', p.description ?? ''],
    // A date, not a time: shown in UTC so midnight does not slip to the day before.
    ['End of life', p.endOfLifeDate?.slice(0, 10)],
    ['Recommended vCPUs', rangeText(p.recommended?.vCPUs, 'vCPUs')],
    ['Recommended memory', rangeText(p.recommended?.memory, 'MB')],
    ['State', p.provisioningState],
    ['Created', `${shortTime(i.systemData?.createdAt) ?? '-'} by ${i.systemData?.createdBy ?? '-'}`],
    ['Id', i.id],
  ]);
}

export function registerImage(program: Command): void {
  const image = program.command('image').description('Create, list, show and delete image definitions in a gallery');

  scoped(
    image
      .command('create')
      .argument('<name>', 'image definition name, e.g. ubuntu-24.04-lab')
      .description('Create an image definition in a gallery (admins only); add versions to it afterwards')
      .requiredOption('--os-type <type>', 'Linux or Windows', oneOf(['Linux', 'Windows']))
      .requiredOption('--os-state <state>', 'Generalized (sysprepped/deprovisioned) or Specialized', oneOf(['Generalized', 'Specialized']))
      .requiredOption('--publisher <publisher>', 'publisher part of the identifier, e.g. your school')
      .requiredOption('--offer <offer>', 'offer part of the identifier, e.g. ubuntu-lab')
      .requiredOption('--sku <sku>', 'SKU part of the identifier, e.g. 24.04')
      .option('--hyper-v-generation <gen>', 'V1 or V2 (default: V1)', oneOf(['V1', 'V2']))
      .option('--architecture <arch>', 'x64 or Arm64 (default: x64)', oneOf(['x64', 'Arm64']))
      .option('--description <text>', 'what the image is for')
      .option('--end-of-life <date>', 'date after which the image should no longer be used, e.g. 2027-08-31')
      .option('--min-vcpus <n>', 'recommended minimum number of vCPUs', parseWholeNumber)
      .option('--max-vcpus <n>', 'recommended maximum number of vCPUs', parseWholeNumber)
      .option('--min-memory <mb>', 'recommended minimum memory in MB', parseWholeNumber)
      .option('--max-memory <mb>', 'recommended maximum memory in MB', parseWholeNumber),
  ).action(async (name: string, opts: CreateOptions) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const vCPUs = range(opts.minVcpus, opts.maxVcpus);
    const memory = range(opts.minMemory, opts.maxMemory);
    const properties: GalleryImageInputProperties = {
      osType: opts.osType,
      osState: opts.osState,
      identifier: { publisher: opts.publisher, offer: opts.offer, sku: opts.sku },
      ...(opts.hyperVGeneration ? { hyperVGeneration: opts.hyperVGeneration } : {}),
      ...(opts.architecture ? { architecture: opts.architecture } : {}),
      ...(opts.description !== undefined ? { description: opts.description } : {}),
      ...(opts.endOfLife ? { endOfLifeDate: opts.endOfLife } : {}),
      ...(vCPUs || memory ? { recommended: { ...(vCPUs ? { vCPUs } : {}), ...(memory ? { memory } : {}) } } : {}),
    };
    let img: GalleryImage;
    try {
      // The location is left out: the server puts an image definition in its gallery's region.
      img = await ctx.client.putImage(sub, opts.resourceGroup, opts.gallery, name, { properties }, { onlyIfNew: true });
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        throw new CliError(
          `Image definition '${name}' already exists in gallery '${opts.gallery}'. Choose another name, or see it with \`labforge image show ${name} --gallery ${opts.gallery} -g ${opts.resourceGroup}\`.`,
          EXIT.conflict,
        );
      }
      throw err;
    }
    if (opts.output === 'json') return printJson(img);
    say(
      opts,
      `Created image definition '${img.name}' in gallery '${opts.gallery}' (${img.properties.osType}, ${img.properties.osState}, ${img.properties.hyperVGeneration}).`,
    );
  });

  scoped(image.command('list').description('List the image definitions of a gallery')).action(async (opts: ImageScope) => {
    const ctx = loadContext();
    const list = await ctx.client.listImages(await ctx.subscription(), opts.resourceGroup, opts.gallery);
    if (opts.output === 'json') return printJson(list);
    printTable(
      ['NAME', 'OS', 'STATE', 'GEN', 'ARCH', 'PUBLISHER/OFFER/SKU', 'PROVISIONING'],
      list.map((i) => {
        const p = i.properties;
        return [
          i.name,
          p.osType,
          p.osState,
          p.hyperVGeneration,
          p.architecture,
          [p.identifier?.publisher, p.identifier?.offer, p.identifier?.sku].join('/'),
          p.provisioningState,
        ];
      }),
      `No image definitions in gallery '${opts.gallery}'.`,
    );
  });

  scoped(image.command('show').argument('<name>', 'image definition name').description('Show one image definition')).action(
    async (name: string, opts: ImageScope) => {
      const ctx = loadContext();
      const img = await ctx.client.getImage(await ctx.subscription(), opts.resourceGroup, opts.gallery, name);
      if (opts.output === 'json') return printJson(img);
      printImage(img);
    },
  );

  scoped(
    image.command('delete').argument('<name>', 'image definition name').description('Delete an image definition that has no versions (admins only)'),
  ).action(async (name: string, opts: ImageScope) => {
    const ctx = loadContext();
    const deleted = await ctx.client.deleteImage(await ctx.subscription(), opts.resourceGroup, opts.gallery, name);
    if (opts.output === 'json') return printJson({ name, gallery: opts.gallery, resourceGroup: opts.resourceGroup, deleted });
    say(opts, deleted ? `Deleted image definition '${name}'.` : `Image definition '${name}' did not exist in gallery '${opts.gallery}'; nothing to delete.`);
  });
}
