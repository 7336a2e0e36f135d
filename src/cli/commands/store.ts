// `labforge store …`: the regional image stores — verify and repair,
// garbage collection, usage and monthly cost (admin).
import type { Command } from 'commander';
import { API_VERSION, type GcReport, type Operation, type Usage, type VerifyReport } from '../../contract/index.js';
import { loadContext } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { type OutputOptions, printJson, printTable, withOutput } from '../output.js';
import { notSucceeded, waitForOperation } from './operation.js';

interface StoreOptions extends OutputOptions {
  region?: string;
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(n < 2 ** 30 ? 3 : 1)} GiB`;

async function runMaintenance(action: 'verify' | 'gc', opts: StoreOptions, evenIfFailed = false): Promise<Operation> {
  const ctx = loadContext();
  const sub = await ctx.subscription();
  const res = await ctx.client.request<Operation>('POST', `/subscriptions/${sub}/providers/Labforge.Core/imageStores/${action}`, {
    query: { 'api-version': API_VERSION.labforge, region: opts.region },
  });
  const op = await waitForOperation(ctx, sub, res.body.name);
  if (op.status !== 'Succeeded' && !(evenIfFailed && op.status === 'Failed')) throw notSucceeded(op);
  return op;
}

export function registerStore(program: Command): void {
  const store = program.command('store').description('Check, repair and clean the image stores of the regions (admin)');

  withOutput(
    store
      .command('verify')
      .description('Re-hash every stored chunk; quarantine corrupt ones and repair them, and missing ones, from another region')
      .option('--region <region>', 'only this region (default: every region)'),
  ).action(async (opts: StoreOptions) => {
    // A verify that found damage it could not repair fails: its report is shown first, then why.
    const op = await runMaintenance('verify', opts, true);
    const reports = ((op.properties as { result?: unknown }).result ?? []) as VerifyReport[];
    if (opts.output === 'json') {
      printJson(reports);
      if (op.status !== 'Succeeded') throw notSucceeded(op);
      return;
    }
    printTable(
      ['REGION', 'CHUNKS', 'CHECKED', 'CORRUPT', 'MISSING', 'REPAIRED', 'UNREPAIRABLE'],
      reports.map((r) => [r.region, r.chunksChecked, gib(r.bytesChecked), r.corrupt.length, r.missing.length, r.repaired.length, r.unrepairable.length]),
      'No region was checked.',
    );
    const setAside = reports.flatMap((r) => (r.packsUnreadable ?? []).map((k) => `${r.region}: ${k}`));
    if (setAside.length) {
      process.stdout.write(
        `\n${setAside.length} pack file(s) had a damaged index and were moved to quarantine/; their chunks were repaired like missing ones:\n  ${setAside.join('\n  ')}\n`,
      );
    }
    const lost = reports.flatMap((r) => r.unrepairable.map((d) => `${r.region}: ${d}`));
    if (lost.length || op.status !== 'Succeeded') {
      throw new CliError(
        `${op.error?.message ?? `${lost.length} chunk(s) are damaged in every region that had them.`}\nDamaged chunks:\n  ${lost.join('\n  ')}`,
        EXIT.operationFailed,
      );
    }
    process.stdout.write('\nThe image stores are sound.\n');
  });

  withOutput(
    store
      .command('gc')
      .description('Free the chunks no version uses any more (chunks younger than the grace period are kept)')
      .option('--region <region>', 'only this region (default: every region)'),
  ).action(async (opts: StoreOptions) => {
    const op = await runMaintenance('gc', opts);
    const reports = ((op.properties as { result?: unknown }).result ?? []) as GcReport[];
    if (opts.output === 'json') return printJson(reports);
    printTable(
      ['REGION', 'KEPT', 'REMOVED', 'FREED', 'IN GRACE'],
      reports.map((r) => [r.region, r.chunksKept, r.chunksRemoved, gib(r.bytesFreed), r.chunksInGrace]),
      'No region was collected.',
    );
  });

  withOutput(
    store.command('usage').description('Stored bytes and monthly storage cost per region and per version').option('--region <region>', 'only this region'),
  ).action(async (opts: StoreOptions) => {
    const ctx = loadContext();
    const sub = await ctx.subscription();
    const res = await ctx.client.request<Usage>('GET', `/subscriptions/${sub}/providers/Labforge.Core/imageStores/usage`, {
      query: { 'api-version': API_VERSION.labforge, region: opts.region },
    });
    const u = res.body;
    if (opts.output === 'json') return printJson(u);
    printTable(
      ['REGION', 'GALLERY', 'IMAGE', 'VERSION', 'LOGICAL', 'STORED', 'UNIQUE', 'REPLICAS', 'COST/MONTH'],
      u.versions.map((v) => [
        v.region,
        v.gallery ?? '(deleted)',
        v.image ?? '-',
        v.version ?? '-',
        gib(v.logicalBytes),
        gib(v.storedBytes),
        gib(v.uniqueBytes),
        v.replicas,
        v.monthlyCost.toFixed(2),
      ]),
      'No version has content in the image stores yet.',
    );
    // Per gallery and region; chunks shared between versions count once in the region totals below.
    const galleries = new Map<string, { region: string; gallery: string; versions: number; logical: number; cost: number }>();
    for (const v of u.versions) {
      const key = `${v.region}/${v.gallery ?? '(deleted)'}`;
      const g = galleries.get(key) ?? { region: v.region, gallery: v.gallery ?? '(deleted)', versions: 0, logical: 0, cost: 0 };
      g.versions++;
      g.logical += v.logicalBytes;
      g.cost += v.monthlyCost;
      galleries.set(key, g);
    }
    if (galleries.size) {
      process.stdout.write('\n');
      printTable(
        ['REGION', 'GALLERY', 'VERSIONS', 'LOGICAL', 'COST/MONTH'],
        [...galleries.values()].map((g) => [g.region, g.gallery, g.versions, gib(g.logical), g.cost.toFixed(2)]),
        '',
      );
    }
    process.stdout.write(
      `\n${u.regions.map((r) => `${r.region}: ${gib(r.totalStoredBytes)} stored, ${r.monthlyCost.toFixed(2)} per month`).join('\n')}\n(price: ${u.pricePerGiBMonth} per GiB-month per replica; set images.pricePerGiBMonth in the configuration)\n`,
    );
  });
}
