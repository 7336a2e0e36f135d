// `labforge factory …`: the image factory, run by people or by a CI pipeline.
// `validate` checks the inputs offline; `plan` says what would happen and
// changes nothing; `build`, `distribute` and `retire` do one phase each; `run`
// does them all, writes a JSON report and exits non-zero on any failure.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import {
  type Action,
  type ActionResult,
  describeAction,
  type FactoryOptions,
  type Phase,
  plan,
  type RunReport,
  run,
  type StateInputs,
} from '../../factory/engine.js';
import { distribution, FactoryInputError, formatProblem, type LabsEntry, loadRecipes, parseLabsFile } from '../../factory/recipes.js';
import { loadContext } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { type OutputOptions, printJson, printTable, withOutput } from '../output.js';

interface InputOptions {
  recipes: string;
  labs?: string;
}
interface RunOptions extends InputOptions, OutputOptions {
  factoryGroup: string;
  maxConcurrentJobs: number;
  retries: number;
  imagesToSave: number;
  force?: boolean;
  report?: string;
}

const inputError = (err: FactoryInputError) =>
  new CliError(`The factory's inputs have problems:\n${err.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`, EXIT.invalid);

function loadInputs(opts: InputOptions): StateInputs {
  try {
    const recipes = loadRecipes(opts.recipes);
    if (!opts.labs) return { recipes, labs: [] };
    let text: string;
    try {
      text = readFileSync(opts.labs, 'utf8');
    } catch (err) {
      throw new CliError(`${opts.labs} cannot be read: ${(err as Error).message}`, EXIT.usage);
    }
    return { recipes, labs: parseLabsFile(text, opts.labs), labsFile: { name: opts.labs, text } };
  } catch (err) {
    if (err instanceof FactoryInputError) throw inputError(err);
    throw err;
  }
}

const count = (v: string, min: number, what: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be a whole number of at least ${min}.`);
  return n;
};

function withRunOptions(cmd: Command, labsRequired: boolean): Command {
  const c = withOutput(cmd)
    .requiredOption('--recipes <folder>', 'the folder of recipes (JSON files at any depth; the path is the image name)')
    .option('--factory-group <group>', 'the resource group the build VMs run in', 'factory')
    .option('--max-concurrent-jobs <n>', 'never more jobs than this at once (builds, replications, …)', (v) => count(v, 1, '--max-concurrent-jobs'), 20)
    .option('--retries <n>', 'retry a failed job this many times', (v) => count(v, 0, '--retries'), 2)
    .option('--images-to-save <n>', 'retire: keep the newest N versions of each image', (v) => count(v, 1, '--images-to-save'), 2)
    .option('--force', 'build every recipe, even unchanged ones');
  return labsRequired
    ? c.requiredOption('--labs <file>', 'labs.json: {"Labs":[{"SubscriptionId","ResourceGroup","LabName","ImagePaths":[...]}]}')
    : c.option('--labs <file>', 'labs.json: {"Labs":[{"SubscriptionId","ResourceGroup","LabName","ImagePaths":[...]}]}');
}

const stamp = () => new Date().toISOString().slice(11, 19);

async function factoryOptions(opts: RunOptions): Promise<FactoryOptions> {
  const ctx = loadContext();
  return {
    client: ctx.client,
    subscription: await ctx.subscription(),
    factoryGroup: opts.factoryGroup,
    maxConcurrentJobs: opts.maxConcurrentJobs,
    retries: opts.retries,
    imagesToSave: opts.imagesToSave,
    force: !!opts.force,
    log: (line) => process.stderr.write(`[${stamp()}] ${line}\n`),
    ...(process.env.LABFORGE_FACTORY_POLL_MS ? { pollMs: Number(process.env.LABFORGE_FACTORY_POLL_MS) } : {}),
    ...(process.env.LABFORGE_FACTORY_RETRY_DELAY_MS ? { retryDelayMs: Number(process.env.LABFORGE_FACTORY_RETRY_DELAY_MS) } : {}),
  };
}

const SIGN: Record<Action['kind'], string> = {
  'create-gallery': '+',
  build: '+',
  skip: '=',
  cleanup: '-',
  attach: '~',
  replicate: '~',
  enable: '~',
  disable: '~',
  delete: '-',
  keep: '=',
};

function printActions(actions: ActionResult[], warnings: string[], done: boolean): void {
  for (const phase of ['build', 'distribute', 'retire'] as const) {
    const list = actions.filter((a) => a.phase === phase);
    if (!list.length) continue;
    process.stdout.write(`${phase[0]?.toUpperCase()}${phase.slice(1)}\n`);
    for (const a of list) {
      const status =
        done && a.status
          ? `  [${a.status}${a.attempts && a.attempts > 1 ? `, ${a.attempts} attempts` : ''}${a.seconds !== undefined ? `, ${a.seconds} s` : ''}]`
          : '';
      process.stdout.write(`  ${SIGN[a.kind]} ${describeAction(a)}${status}\n`);
      if (a.error) process.stdout.write(`      ${a.error}\n`);
    }
  }
  const changes = actions.filter((a) => a.kind !== 'skip' && a.kind !== 'keep');
  const by = (k: Action['kind']) => changes.filter((a) => a.kind === k).length;
  const parts = (['build', 'replicate', 'enable', 'disable', 'delete', 'attach', 'create-gallery', 'cleanup'] as const)
    .filter((k) => by(k))
    .map((k) => `${by(k)} ${k}`);
  process.stdout.write(
    changes.length
      ? `${done ? 'Done' : 'Would do'}: ${parts.join(', ')}.\n`
      : `Nothing to do: every image is built, distributed and retired as the inputs say.\n`,
  );
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
}

function writeReport(file: string, report: RunReport): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(tmp, file);
}

async function runPhases(opts: RunOptions, phases: Phase[]): Promise<void> {
  const inputs = loadInputs(opts);
  const o = await factoryOptions(opts);
  let report: RunReport;
  try {
    report = await run(o, inputs, phases);
  } catch (err) {
    if (err instanceof FactoryInputError) throw inputError(err);
    throw err;
  }
  if (opts.report) writeReport(opts.report, report);
  if (opts.output === 'json') printJson(report);
  else {
    printActions(report.actions, report.warnings, true);
    if (opts.report) process.stdout.write(`Report: ${opts.report}\n`);
  }
  if (report.result !== 'Succeeded') {
    throw new CliError(`${report.failures.length} job(s) failed:\n${report.failures.map((f) => `  ${f}`).join('\n')}`, EXIT.operationFailed);
  }
}

export function registerFactory(program: Command): void {
  const factory = program.command('factory').description('The image factory: golden images built from recipes and pushed to lab accounts');
  withOutput(
    factory
      .command('validate')
      .description('Check the recipes (and labs.json) offline and show which image each recipe makes and which lab accounts get it')
      .requiredOption('--recipes <folder>', 'the folder of recipes (JSON files at any depth; the path is the image name)')
      .option('--labs <file>', 'labs.json: {"Labs":[{"SubscriptionId","ResourceGroup","LabName","ImagePaths":[...]}]}'),
  ).action((opts: OutputOptions & InputOptions) => {
    const { recipes, labs } = loadInputs(opts) as { recipes: StateInputs['recipes']; labs: LabsEntry[] };
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

  withRunOptions(
    factory.command('plan').description('Show what build, distribute and retire would do (create, skip, replicate, enable, delete), changing nothing'),
    false,
  ).action(async (opts: RunOptions) => {
    const inputs = loadInputs(opts);
    let result: Awaited<ReturnType<typeof plan>>;
    try {
      result = await plan(await factoryOptions(opts), inputs);
    } catch (err) {
      if (err instanceof FactoryInputError) throw inputError(err);
      throw err;
    }
    if (opts.output === 'json') return printJson(result);
    printActions(result.actions, result.warnings, false);
  });

  withRunOptions(factory.command('build').description('Build the recipes that changed as new Generalized versions (VMs, customisation, capture)'), false)
    .option('--report <file>', 'write a JSON report of what was done')
    .action((opts: RunOptions) => runPhases(opts, ['build']));
  withRunOptions(factory.command('distribute').description("Replicate each image's latest version to the lab accounts of labs.json and enable it there"), true)
    .option('--report <file>', 'write a JSON report of what was done')
    .action((opts: RunOptions) => runPhases(opts, ['distribute']));
  withRunOptions(
    factory
      .command('retire')
      .description('Keep the newest --images-to-save versions of each image (and those still in use); disable images a lab account no longer gets'),
    true,
  )
    .option('--report <file>', 'write a JSON report of what was done')
    .action((opts: RunOptions) => runPhases(opts, ['retire']));
  withRunOptions(
    factory.command('run').description('Validate, build, distribute and retire; write a JSON report; exit 7 on bad inputs, 8 when any job failed'),
    true,
  )
    .option('--report <file>', 'where to write the JSON report', 'factory-report.json')
    .action((opts: RunOptions) => runPhases(opts, ['build', 'distribute', 'retire']));
}
