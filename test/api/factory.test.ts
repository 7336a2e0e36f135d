// The image factory's rules against a real server whose compute driver runs
// nothing (disks and captures are real): plan equals run, re-running changes
// nothing, distribution follows labs.json, retire keeps what is in use, stray
// VMs and unknown lab accounts stop the run, and jobs stay within their bound.
// The test plays the guest: a build VM "powers off" a moment after it starts.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/client/api-client.js';
import { type Action, compareVersions, type FactoryOptions, plan, run, TAG } from '../../src/factory/engine.js';
import { FactoryInputError, loadRecipes, parseLabsFile } from '../../src/factory/recipes.js';
import { BIN, ensureBuilt, runCli } from '../helpers/cli.js';
import { fakeDriver } from '../helpers/fake-compute.js';
import { LS } from '../helpers/labs.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const root = mkdtempSync(join(tmpdir(), 'labforge-factory-run-'));

function tree(name: string, files: Record<string, unknown>): string {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  for (const [p, v] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), typeof v === 'string' ? v : JSON.stringify(v, null, 2));
  }
  return dir;
}

const recipe = (text: string, extra: Record<string, unknown> = {}) => ({
  base: { image: 'bases/os/linux' },
  gallery: { resourceGroup: 'factory-images', name: 'golden' },
  customData: `#cloud-config\nwrite_files:\n  - path: /etc/recipe\n    content: ${text}\n`,
  ...extra,
});

/** The guest: every build VM powers off ~`ms` after it starts; records the most VMs running at once. */
function guest(ms: number) {
  const since = new Map<string, number>();
  let peak = 0;
  const seen = new Set<string>();
  const h = { hold: false };
  const timer = setInterval(() => {
    const running = [...fakeDriver.vms.entries()].filter(([, v]) => v.state === 'Running');
    peak = Math.max(peak, running.length);
    for (const id of fakeDriver.vms.keys()) seen.add(id);
    if (h.hold) return;
    for (const [id, vm] of running) {
      const t0 = since.get(id) ?? Date.now();
      since.set(id, t0);
      if (Date.now() - t0 > ms) {
        vm.state = 'Stopped';
        since.delete(id);
      }
    }
  }, 20);
  return Object.assign(h, { peak: () => peak, created: () => seen.size, stop: () => clearInterval(timer) });
}

const key = (a: Action) => [a.phase, a.kind, a.imagePath ?? a.gallery ?? a.vm, a.version ?? '', a.lab ?? '', (a.regions ?? []).join('+')].join(' ');

describe('image factory (fake driver)', () => {
  let t: TestServer;
  let client: ApiClient;
  let g: ReturnType<typeof guest>;
  const logs: string[] = [];
  const opts = (extra: Partial<FactoryOptions> = {}): FactoryOptions => ({
    client,
    subscription: t.sub,
    factoryGroup: 'factory',
    maxConcurrentJobs: 4,
    retries: 0,
    imagesToSave: 2,
    log: (l) => logs.push(l),
    pollMs: 50,
    retryDelayMs: 10,
    ...extra,
  });
  const inputs = (dir: string, labs?: unknown) => {
    const text = labs === undefined ? undefined : JSON.stringify(labs, null, 2);
    return { recipes: loadRecipes(dir), labs: text ? parseLabsFile(text, 'labs.json') : [], ...(text ? { labsFile: { name: 'labs.json', text } } : {}) };
  };
  const rg = () => `/subscriptions/${t.sub}/resourceGroups`;
  const planImages = async (plan: string) =>
    (await t.call('GET', `${rg()}/school/providers/Microsoft.LabServices/labPlans/${plan}/images?${LS}&includeHidden=true`)).body.value
      .filter((i: any) => i.properties.enabledState === 'Enabled' && !i.properties.builtin)
      .map((i: any) => i.name)
      .sort();
  const versions = async (image: string) =>
    (
      await t.call('GET', `${rg()}/factory-images/providers/Microsoft.Compute/galleries/golden/images/${image}/versions?${COMPUTE}&$expand=ReplicationStatus`)
    ).body.value.sort((a: any, b: any) => compareVersions(b.name, a.name)) as any[];
  const labs = {
    Labs: [
      { SubscriptionId: '', ResourceGroup: 'school', LabName: 'science', ImagePaths: ['Linux'] },
      { SubscriptionId: '', ResourceGroup: 'school', LabName: 'arts', ImagePaths: ['Tools/Editor.json'] },
    ],
  };

  beforeAll(async () => {
    t = await startTestServer('sqlite', { env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    client = new ApiClient({ baseUrl: t.server.url, token: t.adminToken });
    for (const l of labs.Labs) l.SubscriptionId = t.sub;
    // A Generalized base image, and two lab accounts: science in site-a, arts in site-b.
    for (const group of ['bases', 'school']) await t.call('PUT', `${rg()}/${group}?${RESOURCES}`, { location: 'site-a' });
    const os = `${rg()}/bases/providers/Microsoft.Compute/galleries/os`;
    await t.call('PUT', `${os}?${COMPUTE}`, { location: 'site-a' });
    await t.call('PUT', `${os}/images/linux?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'school', offer: 'linux', sku: '1' } },
    });
    const v = await t.call('PUT', `${os}/images/linux/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: {
        publishingProfile: { targetRegions: [{ name: 'site-a' }, { name: 'site-b' }] },
        storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } } },
      },
    });
    expect((await waitForOperation(t, v.headers['azure-asyncoperation'] as string)).status).toBe('Succeeded');
    for (const [name, location] of [
      ['science', 'site-a'],
      ['arts', 'site-b'],
    ]) {
      expect((await t.call('PUT', `${rg()}/school/providers/Microsoft.LabServices/labPlans/${name}?${LS}`, { location })).status).toBe(201);
    }
    g = guest(150);
  });
  afterEach(() => {
    logs.length = 0;
  });
  afterAll(async () => {
    g?.stop();
    await t?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('plans, then runs exactly the plan; a second run changes nothing; a changed recipe makes one new version', async () => {
    const dir = tree('school', {
      'Linux/Web.json': recipe('web'),
      'Linux/Db.json': recipe('db'),
      'Tools/Editor.json': recipe('editor', { regions: ['site-a'] }),
    });
    const planned = await plan(opts(), inputs(dir, labs));
    const changes = planned.actions.filter((a) => a.kind !== 'skip' && a.kind !== 'keep');
    expect(changes.map(key).sort()).toEqual(
      [
        'build create-gallery factory-images/golden   ',
        'build build Linux/Db 1.0.0  site-a',
        'build build Linux/Web 1.0.0  site-a',
        'build build Tools/Editor 1.0.0  site-a',
        'distribute attach factory-images/golden  school/science ',
        'distribute attach factory-images/golden  school/arts ',
        'distribute replicate Tools/Editor 1.0.0  site-b',
        'distribute enable Linux/Db 1.0.0 school/science ',
        'distribute enable Linux/Web 1.0.0 school/science ',
        'distribute enable Tools/Editor 1.0.0 school/arts ',
      ].sort(),
    );
    // Planning changed nothing.
    expect((await t.call('GET', `${rg()}/factory-images/providers/Microsoft.Compute/galleries/golden?${COMPUTE}`)).status).toBe(404);

    const report = await run(opts(), inputs(dir, labs));
    expect(report.failures).toEqual([]);
    expect(report.result).toBe('Succeeded');
    expect(report.actions.map(key).sort()).toEqual(planned.actions.map(key).sort());
    // Three Generalized versions, tagged with their recipe; the build VMs are gone.
    for (const image of ['Linux-Web', 'Linux-Db', 'Tools-Editor']) {
      const [v] = await versions(image);
      expect(v.name).toBe('1.0.0');
      expect(v.tags[TAG.imagePath]).toBe(image.replace('-', '/'));
      expect(v.properties.storageProfile.source.virtualMachineId).toMatch(/\/resourceGroups\/factory\/providers\/Microsoft.Compute\/virtualMachines\/lf-/);
    }
    const def = await t.call('GET', `${rg()}/factory-images/providers/Microsoft.Compute/galleries/golden/images/Linux-Web?${COMPUTE}`);
    expect(def.body.properties.osState).toBe('Generalized');
    expect((await t.call('GET', `${rg()}/factory/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01`)).body.value).toEqual([]);
    // Exactly where labs.json says: science gets the Linux folder, arts the one file, replicated to its region.
    expect(await planImages('science')).toEqual(['Linux-Db', 'Linux-Web']);
    expect(await planImages('arts')).toEqual(['Tools-Editor']);
    const editor = (await versions('Tools-Editor'))[0];
    expect(editor.properties.replicationStatus.summary.map((s: any) => `${s.region}:${s.state}`).sort()).toEqual(['site-a:Completed', 'site-b:Completed']);
    expect(
      (await versions('Linux-Web'))[0].properties.publishingProfile.targetRegions.map((r: any) => r.name),
      'science is in site-a only: no replica elsewhere',
    ).toEqual(['site-a']);

    // A second run is a no-op.
    const again = await run(opts(), inputs(dir, labs));
    expect(again.actions.filter((a) => a.kind !== 'skip').map(key)).toEqual([]);
    expect(again.actions.filter((a) => a.kind === 'skip')).toHaveLength(3);

    // Change one recipe: one new version, and labs get it.
    const changed = tree('school', {
      'Linux/Web.json': recipe('web2'),
      'Linux/Db.json': recipe('db'),
      'Tools/Editor.json': recipe('editor', { regions: ['site-a'] }),
    });
    const p2 = await plan(opts(), inputs(changed, labs));
    const r2 = await run(opts(), inputs(changed, labs));
    expect(r2.actions.filter((a) => a.kind !== 'skip').map(key)).toEqual(['build build Linux/Web 1.0.1  site-a']);
    expect(r2.actions.map(key).sort()).toEqual(p2.actions.map(key).sort());
    expect((await versions('Linux-Web')).map((v) => v.name)).toEqual(['1.0.1', '1.0.0']);
    expect((await versions('Linux-Db')).map((v) => v.name)).toEqual(['1.0.0']);
  }, 120_000);

  it('retire keeps the newest N and anything a lab still uses, and disables images a lab account no longer gets', async () => {
    const dir = tree('school', {
      'Linux/Web.json': recipe('web3'),
      'Linux/Db.json': recipe('db'),
      'Tools/Editor.json': recipe('editor', { regions: ['site-a'] }),
    });
    // A lab made while 1.0.1 is the latest: its template VM is on 1.0.1.
    const lab = `${rg()}/school/providers/Microsoft.LabServices/labs/web-course`;
    const created = await t.call('PUT', `${lab}?${LS}`, {
      location: 'site-a',
      properties: {
        labPlanId: `${rg()}/school/providers/Microsoft.LabServices/labPlans/science`,
        title: 'Web',
        virtualMachineProfile: {
          createOption: 'TemplateVM',
          imageReference: { id: `${rg()}/school/providers/Microsoft.LabServices/labPlans/science/images/Linux-Web` },
          sku: { name: 'Standard_B1s', capacity: 0 },
          usageQuota: 'PT10H',
          adminUser: { username: 'teacher', password: 'Secret-123' },
        },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await waitForOperation(t, created.headers['azure-asyncoperation'] as string)).status).toBe('Succeeded');

    await run(opts({ imagesToSave: 3 }), inputs(dir, labs));
    expect((await versions('Linux-Web')).map((v) => v.name)).toEqual(['1.0.2', '1.0.1', '1.0.0']);
    // science no longer takes Linux/Db.
    const fewer = { Labs: [{ ...labs.Labs[0], ImagePaths: ['Linux/Web.json'] }, labs.Labs[1]] };
    const planned = await plan(opts({ imagesToSave: 1 }), inputs(dir, fewer));
    const report = await run(opts({ imagesToSave: 1 }), inputs(dir, fewer));
    const retire = report.actions.filter((a) => a.phase === 'retire').map((a) => `${a.kind} ${a.image} ${a.version ?? a.lab}`);
    expect(retire.sort()).toEqual(['delete Linux-Web 1.0.0', 'disable Linux-Db school/science', 'keep Linux-Web 1.0.1'].sort());
    expect(report.actions.map(key).sort()).toEqual(planned.actions.map(key).sort());
    const kept = report.actions.find((a) => a.kind === 'keep');
    expect(kept?.reason).toMatch(/still used by lab web-course, VM template/);
    expect((await versions('Linux-Web')).map((v) => v.name)).toEqual(['1.0.2', '1.0.1']);
    expect(await planImages('science')).toEqual(['Linux-Web']);
    await t.call('DELETE', `${lab}?${LS}`);
  }, 120_000);

  it('never runs more jobs at once than --max-concurrent-jobs', async () => {
    const files: Record<string, unknown> = {};
    for (let i = 0; i < 6; i++) files[`Batch/Image${i}.json`] = recipe(`b${i}`);
    const dir = tree('batch', files);
    let now = 0;
    let most = 0;
    const peakBefore = g.peak();
    const report = await run(
      opts({
        maxConcurrentJobs: 2,
        onJob: (e) => {
          now += e === 'start' ? 1 : -1;
          most = Math.max(most, now);
        },
      }),
      inputs(dir),
      ['build'],
    );
    expect(report.result, JSON.stringify(report.failures)).toBe('Succeeded');
    expect(report.actions.filter((a) => a.kind === 'build')).toHaveLength(6);
    expect(most).toBe(2);
    // What the host saw: never more than two build VMs running together (and never more than before).
    expect(g.peak()).toBeLessThanOrEqual(Math.max(2, peakBefore));
    // The jobs' own times overlap by at most two as well.
    const spans = report.actions.filter((a) => a.kind === 'build').map((a) => [Date.parse(a.startedAt as string), Date.parse(a.finishedAt as string)]);
    const overlap = Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a <= (s as number) && (s as number) < (b as number)).length));
    expect(overlap).toBeLessThanOrEqual(2);
  }, 120_000);

  it('stops before building when labs.json names an unknown lab account or the factory holds a stray VM', async () => {
    const dir = tree('school', { 'Linux/Web.json': recipe('web3'), 'Linux/Db.json': recipe('db'), 'Tools/Editor.json': recipe('editor') });
    const bad = { Labs: [...labs.Labs, { SubscriptionId: t.sub, ResourceGroup: 'school', LabName: 'music', ImagePaths: ['Linux'] }] };
    const err = await plan(opts(), inputs(dir, bad)).catch((e) => e);
    expect(err).toBeInstanceOf(FactoryInputError);
    expect((err as FactoryInputError).problems.map((p) => `${p.file}:${p.line} ${p.field}: ${p.message}`)).toEqual([
      "labs.json:22 Labs.2.LabName: there is no lab account 'music' in resource group 'school' of subscription '" +
        t.sub +
        "'; create it (labforge account create) or correct the entry",
    ]);

    // A VM in the factory with neither tag.
    const vm = await t.call('PUT', `${rg()}/factory/providers/Microsoft.Compute/virtualMachines/stray?api-version=2024-07-01`, {
      location: 'site-a',
      properties: {
        hardwareProfile: { vmSize: 'Standard_B1s' },
        storageProfile: { imageReference: { id: `${rg()}/bases/providers/Microsoft.Compute/galleries/os/images/linux` } },
        osProfile: { adminUsername: 'teacher', adminPassword: 'Secret-123' },
      },
    });
    expect(vm.status, JSON.stringify(vm.body)).toBe(201);
    await waitForOperation(t, vm.headers['azure-asyncoperation'] as string);
    const stray = await run(opts(), inputs(dir, labs)).catch((e) => e);
    expect((stray as FactoryInputError).problems.map((p) => p.message)).toEqual([
      "VM 'stray' in the factory has neither an ImagePath nor a FactoryIgnore tag; tag it FactoryIgnore to keep it there, or delete it",
    ]);
    // Tagged FactoryIgnore, it is left alone.
    await t.call('PATCH', `${rg()}/factory/providers/Microsoft.Compute/virtualMachines/stray?api-version=2024-07-01`, { tags: { [TAG.ignore]: 'yes' } });
    const ok = await run(opts(), inputs(dir, labs));
    expect(ok.result).toBe('Succeeded');
    expect((await t.call('GET', `${rg()}/factory/providers/Microsoft.Compute/virtualMachines/stray?api-version=2024-07-01`)).status).toBe(200);
  }, 120_000);

  it('retries a job that failed for a passing reason, and reports the attempts', async () => {
    const dir = tree('retry', { 'Retry/One.json': recipe('one'), 'Retry/Two.json': recipe('two') });
    // No retry: the run fails, says which job and why, and exits non-zero in the CLI (see the CLI test).
    fakeDriver.failStarts = 1;
    const failed = await run(opts({ maxConcurrentJobs: 1 }), inputs(dir), ['build']);
    expect(failed.result).toBe('Failed');
    expect(failed.failures).toEqual([
      expect.stringMatching(/^build Retry\/One as Retry-One 1\.0\.0 .*: creating build VM lf-Retry-One-\w+ failed: .*could not start/),
    ]);
    expect(failed.actions.find((a) => a.imagePath === 'Retry/Two')?.status).toBe('Succeeded');
    // With one retry, the same failure passes on the second attempt (the failed VM is replaced).
    fakeDriver.failStarts = 1;
    const dir2 = tree('retry', { 'Retry/One.json': recipe('one-b'), 'Retry/Two.json': recipe('two') });
    const ok = await run(opts({ maxConcurrentJobs: 1, retries: 1 }), inputs(dir2), ['build']);
    expect(ok.failures).toEqual([]);
    const one = ok.actions.find((a) => a.imagePath === 'Retry/One');
    expect(one).toMatchObject({ kind: 'build', status: 'Succeeded', attempts: 2, version: '1.0.0' });
    expect(logs.some((l) => /attempt 1 failed .*retrying/.test(l))).toBe(true);
    expect((await versions('Retry-One')).map((v) => v.name)).toEqual(['1.0.0']);
  }, 120_000);

  it('resumes an interrupted run: the build VM it left is captured, not built again', async () => {
    ensureBuilt();
    const dir = tree('resume', { 'Resume/Lab.json': recipe('resume') });
    const cfg = mkdtempSync(join(root, 'cfg-'));
    const env = { LABFORGE_CONFIG_DIR: cfg, LABFORGE_SERVER: t.server.url, LABFORGE_TOKEN: t.adminToken, LABFORGE_FACTORY_POLL_MS: '50' };
    g.hold = true;
    const before = g.created();
    const child = spawn(process.execPath, [BIN, 'factory', 'build', '--recipes', dir], { env: { ...process.env, ...env }, stdio: 'ignore' });
    try {
      const earlier = new Set(fakeDriver.vms.keys());
      const started = () => [...fakeDriver.vms.entries()].some(([id, v]) => !earlier.has(id) && v.state === 'Running');
      for (let i = 0; i < 1200 && !started(); i++) await sleep(25);
      await sleep(60); // the guest's next look at the host
      expect(g.created()).toBe(before + 1);
    } finally {
      child.kill('SIGKILL');
      g.hold = false;
    }
    // The guest finishes while nobody watches; the next run picks the VM up where it was.
    const planned = await plan(opts(), inputs(dir));
    expect(planned.actions.find((a) => a.kind === 'build')?.reason).toBe('resume: its build VM exists');
    const r = await runCli(['factory', 'build', '--recipes', dir, '-o', 'json'], { env, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).actions.map((a: Action) => `${a.kind} ${a.imagePath} ${a.version} ${a.reason}`)).toEqual([
      'build Resume/Lab 1.0.0 resume: its build VM exists',
    ]);
    expect(g.created(), 'no second build VM').toBe(before + 1);
    expect((await versions('Resume-Lab')).map((v) => v.name)).toEqual(['1.0.0']);
    expect(
      (await t.call('GET', `${rg()}/factory/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01`)).body.value.map((v: any) => v.name),
    ).toEqual(['stray']);
  }, 120_000);

  it('the CLI: plan prints what would change, bad inputs exit 7 with file and line, failed jobs exit 8 with a report', async () => {
    ensureBuilt();
    const dir = tree('cli', { 'Cli/Box.json': recipe('box') });
    const cfg = mkdtempSync(join(root, 'cfg-'));
    const env = {
      LABFORGE_CONFIG_DIR: cfg,
      LABFORGE_SERVER: t.server.url,
      LABFORGE_TOKEN: t.adminToken,
      LABFORGE_FACTORY_POLL_MS: '50',
      LABFORGE_FACTORY_RETRY_DELAY_MS: '10',
    };
    const cli = (args: string[]) => runCli(args, { env, timeoutMs: 60_000 });
    const p = await cli(['factory', 'plan', '--recipes', dir]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/^Build\n {2}\+ build Cli\/Box as Cli-Box 1\.0\.0 in site-a \(1 GB\): first build; up to 60 min \(its timeout\)\n/m);
    expect(p.stdout).toMatch(/Would do: 1 build\./);

    const labsFile = join(dir, '..', 'cli-labs.json');
    writeFileSync(labsFile, JSON.stringify({ Labs: [{ SubscriptionId: t.sub, ResourceGroup: 'school', LabName: 'nowhere', ImagePaths: ['Cli'] }] }, null, 2));
    const bad = await cli(['factory', 'run', '--recipes', dir, '--labs', labsFile]);
    expect(bad.code).toBe(7);
    expect(bad.stderr).toContain(`cli-labs.json:6 (Labs.0.LabName): there is no lab account 'nowhere' in resource group 'school'`);

    fakeDriver.failStarts = 2;
    const report = join(root, 'cli-report.json');
    const failed = await cli(['factory', 'build', '--recipes', dir, '--retries', '1', '--report', report]);
    expect(failed.code).toBe(8);
    expect(failed.stderr).toMatch(/1 job\(s\) failed:\n {2}build Cli\/Box .*could not start/);
    const written = JSON.parse(readFileSync(report, 'utf8'));
    expect(written).toMatchObject({ result: 'Failed', actions: [{ kind: 'build', imagePath: 'Cli/Box', status: 'Failed', attempts: 2 }] });
    const done = await cli(['factory', 'build', '--recipes', dir]);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/\+ build Cli\/Box as Cli-Box 1\.0\.0 .*\[Succeeded, [\d.]+ s\]/);
    expect((await cli(['factory', 'plan', '--recipes', dir])).stdout).toMatch(/= skip Cli\/Box: unchanged since version 1\.0\.0\nNothing to do/);

    // `labforge vm tag` takes the FactoryIgnore tag off the stray VM (the factory then stops) and puts it back.
    const off = await cli(['vm', 'tag', 'stray', '-g', 'factory', 'Owner=it', '--remove', 'FactoryIgnore']);
    expect(off.stdout).toBe('VM stray has the tags Owner=it.\n');
    const stopped = await cli(['factory', 'plan', '--recipes', dir]);
    expect(stopped.code).toBe(7);
    expect(stopped.stderr).toContain("VM 'stray' in the factory has neither an ImagePath nor a FactoryIgnore tag");
    expect((await cli(['vm', 'tag', 'stray', '-g', 'factory', 'FactoryIgnore=yes'])).stdout).toBe('VM stray has the tags Owner=it, FactoryIgnore=yes.\n');
    expect((await cli(['factory', 'plan', '--recipes', dir])).code).toBe(0);
    expect((await cli(['vm', 'tag', 'stray', '-g', 'factory', 'nonsense'])).code).toBe(2);
  }, 120_000);

  it('replicates a recipe to a region added to it instead of building again, and builds a recipe changed back', async () => {
    const one = (text: string, regions: string[]) => tree('regions', { 'Regions/One.json': recipe(text, { regions }) });
    await run(opts(), inputs(one('a', ['site-a'])), ['build', 'distribute']);
    const more = await run(opts(), inputs(one('a', ['site-a', 'site-b'])), ['build', 'distribute']);
    expect(more.actions.filter((a) => a.kind !== 'skip').map(key)).toEqual(['distribute replicate Regions/One 1.0.0  site-b']);
    expect((await versions('Regions-One'))[0].properties.replicationStatus.summary.map((x: any) => x.region).sort()).toEqual(['site-a', 'site-b']);
    await run(opts(), inputs(one('b', ['site-a', 'site-b'])), ['build']);
    const back = await run(opts(), inputs(one('a', ['site-a', 'site-b'])), ['build']);
    expect(back.actions.map((a) => `${a.kind} ${a.version} ${a.reason}`)).toEqual(['build 1.0.2 recipe changed']);
  }, 120_000);
});
