// `labforge factory …`: the image factory. `validate` reads the recipes and
// labs.json and says what each lab account would get, before anything runs.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { distribution, FactoryInputError, formatProblem, type LabsEntry, loadRecipes, parseLabsFile } from '../../factory/recipes.js';
import { CliError, EXIT } from '../errors.js';
import { type OutputOptions, printJson, printTable, withOutput } from '../output.js';

export function registerFactory(program: Command): void {
  const factory = program.command('factory').description('The image factory: golden images built from recipes and pushed to lab accounts');
  withOutput(
    factory
      .command('validate')
      .description('Check the recipes (and labs.json) and show which image each recipe makes and which lab accounts get it')
      .requiredOption('--recipes <folder>', 'the folder of recipes (JSON files at any depth; the path is the image name)')
      .option('--labs <file>', 'labs.json: {"Labs":[{"SubscriptionId","ResourceGroup","LabName","ImagePaths":[...]}]}'),
  ).action((opts: OutputOptions & { recipes: string; labs?: string }) => {
    let recipes: ReturnType<typeof loadRecipes>;
    let labs: LabsEntry[] = [];
    try {
      recipes = loadRecipes(opts.recipes);
      if (opts.labs) {
        let text: string;
        try {
          text = readFileSync(opts.labs, 'utf8');
        } catch (err) {
          throw new CliError(`${opts.labs} cannot be read: ${(err as Error).message}`, EXIT.usage);
        }
        labs = parseLabsFile(text, opts.labs);
      }
    } catch (err) {
      if (err instanceof FactoryInputError)
        throw new CliError(`The factory's inputs have problems:\n${err.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`, EXIT.invalid);
      throw err;
    }
    const d = distribution(recipes, labs);
    if (opts.output === 'json') return printJson({ recipes, distribution: d });
    printTable(
      ['IMAGE PATH', 'IMAGE', 'BASE', 'GALLERY', 'TIMEOUT'],
      recipes.map((r) => [
        r.imagePath,
        r.imageName,
        `${r.base.image}${r.base.version ? ` ${r.base.version}` : ''}`,
        `${r.gallery.resourceGroup}/${r.gallery.name}`,
        `${r.timeoutMinutes} min`,
      ]),
      'No recipes found: put JSON recipes in the folder (for example Linux/Web.json).',
    );
    if (opts.labs) {
      process.stdout.write('\n');
      printTable(
        ['LAB ACCOUNT', 'IMAGES'],
        d.targets.map((x) => [`${x.lab.ResourceGroup}/${x.lab.LabName}`, x.recipes.map((r) => r.imageName).join(', ')]),
        'labs.json lists no lab accounts.',
      );
      for (const u of d.unmatched) process.stderr.write(`warning: '${u.path}' (lab account ${u.lab}) matches no recipe\n`);
      for (const r of d.unused) process.stderr.write(`warning: no lab account receives ${r.imagePath}\n`);
    }
  });
}
