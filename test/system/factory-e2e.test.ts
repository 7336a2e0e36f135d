// The image factory end to end, as a pipeline runs it: the built `labforge`
// CLI against a TLS server whose VMs are real QEMU guests (the test guest).
// Three recipes (two in one folder, one elsewhere, customised by a script
// file) and a labs.json with two
// lab accounts: `factory run` builds three Generalized versions whose disks
// hold what their customisations wrote, makes them available exactly where
// labs.json says, and a second run changes nothing; a changed recipe makes
// one new version; retire keeps a version while a lab uses it.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { LS } from '../helpers/labs.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const exec = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..');

const recipe = (file: string, content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify(
    {
      description: `${file} for the factory test`,
      base: { image: 'builtin/labforge-test-guest' },
      gallery: { resourceGroup: 'factory-images', name: 'golden' },
      customData: `#cloud-config\nwrite_files:\n  - path: /srv/${file}\n    content: ${content}\n`,
      timeoutMinutes: 10,
      ...extra,
    },
    null,
    2,
  );

describe('image factory on real QEMU', () => {
  let t: TestServer;
  let dir: string;
  let cli: (args: string[], timeoutMs?: number) => ReturnType<typeof runCli>;
  const recipes = () => join(dir, 'recipes');
  const labsFile = () => join(dir, 'labs.json');
  const write = (files: Record<string, string>) => {
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(dirname(join(recipes(), p)), { recursive: true });
      writeFileSync(join(recipes(), p), text);
    }
  };
  const common = () => ['--recipes', recipes(), '--labs', labsFile(), '--max-concurrent-jobs', '2', '-o', 'json'];
  const key = (a: any) => [a.phase, a.kind, a.imagePath ?? a.gallery ?? a.vm, a.version ?? '', a.lab ?? '', (a.regions ?? []).join('+')].join(' ');
  const rootOffset = () => /root_offset_bytes=(\d+)/.exec(readFileSync(join(REPO, '.labforge-data', 'test-guest', 'guest.info'), 'utf8'))?.[1] as string;
  /** A file from a version's disk, read with debugfs from the raw download. */
  async function fileIn(image: string, version: string, path: string): Promise<string> {
    const raw = join(dir, `${image}-${version}.raw`);
    const r = await cli(['version', 'download', version, '-g', 'factory-images', '--gallery', 'golden', '--image', image, '--format', 'raw', '-f', raw]);
    expect(r.code, r.stderr).toBe(0);
    try {
      const { stdout } = await exec('debugfs', ['-R', `cat ${path}`, `${raw}?offset=${rootOffset()}`], { encoding: 'utf8' });
      return stdout;
    } finally {
      rmSync(raw, { force: true });
    }
  }
  const enabled = async (plan: string) =>
    (await t.call('GET', `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.LabServices/labPlans/${plan}/images?${LS}`)).body.value
      .filter((i: any) => i.properties.enabledState === 'Enabled' && !i.properties.builtin)
      .map((i: any) => i.name)
      .sort();
  const versionNames = async (image: string) =>
    (
      await t.call(
        'GET',
        `/subscriptions/${t.sub}/resourceGroups/factory-images/providers/Microsoft.Compute/galleries/golden/images/${image}/versions?${COMPUTE}`,
      )
    ).body.value
      .map((v: any) => v.name)
      .sort();

  beforeAll(async () => {
    ensureBuilt();
    t = await startTestServer('sqlite', { tls: true, env: { LABFORGE_BUILTIN_IMAGES: 'on', LABFORGE_ACCEL: 'tcg' } });
    dir = mkdtempSync(join(tmpdir(), 'labforge-factory-e2e-'));
    cli = (args, timeoutMs = 60_000) =>
      runCli(args, {
        env: {
          LABFORGE_CONFIG_DIR: join(dir, 'config'),
          LABFORGE_SERVER: t.server.url,
          LABFORGE_TOKEN: t.adminToken,
          LABFORGE_CA_FILE: t.server.caFile as string,
          LABFORGE_FACTORY_POLL_MS: '500',
        },
        timeoutMs,
      });
    const builtin = `/subscriptions/${t.sub}/resourceGroups/labforge-builtin/providers/Microsoft.Compute/galleries/builtin/images/labforge-test-guest/versions/1.0.0`;
    for (let i = 0; ; i++) {
      const v = await t.call('GET', `${builtin}?${COMPUTE}&$expand=ReplicationStatus`);
      if (v.body?.properties?.replicationStatus?.aggregatedState === 'Completed') break;
      if (i > 600) throw new Error(`the built-in test guest was not ready: ${JSON.stringify(v.body)}`);
      await sleep(100);
    }
    await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/school?${RESOURCES}`, { location: 'site-a' });
    for (const [plan, location] of [
      ['science', 'site-a'],
      ['arts', 'site-b'],
    ]) {
      const r = await t.call('PUT', `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.LabServices/labPlans/${plan}?${LS}`, { location });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    write({
      'Linux/Web.json': recipe('web.txt', 'nginx-ready'),
      'Linux/Db.json': recipe('db.txt', 'postgres-ready'),
      // This one is customised by a script file next to the recipe instead of cloud-config.
      'Tools/Editor.json': JSON.stringify({
        base: { image: 'builtin/labforge-test-guest' },
        gallery: { resourceGroup: 'factory-images', name: 'golden' },
        scripts: ['editor.sh'],
        timeoutMinutes: 10,
      }),
      'Tools/editor.sh': '#!/bin/sh\nmkdir -p /srv\necho editor-ready > /srv/editor.txt\n',
    });
    writeFileSync(
      labsFile(),
      JSON.stringify(
        {
          Labs: [
            { SubscriptionId: t.sub, ResourceGroup: 'school', LabName: 'science', ImagePaths: ['Linux'] },
            { SubscriptionId: t.sub, ResourceGroup: 'school', LabName: 'arts', ImagePaths: ['Tools/Editor.json'] },
          ],
        },
        null,
        2,
      ),
    );
  }, 180_000);
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds, distributes and re-runs as a no-op; a changed recipe makes one version; retire keeps what a lab uses', async () => {
    // The plan, then the run: the same actions.
    const planned = await cli(['factory', 'plan', ...common()]);
    expect(planned.code, planned.stderr).toBe(0);
    const plan = JSON.parse(planned.stdout);
    expect(plan.actions.filter((a: any) => a.kind === 'build').map((a: any) => `${a.imagePath} ${a.version}`)).toEqual([
      'Linux/Db 1.0.0',
      'Linux/Web 1.0.0',
      'Tools/Editor 1.0.0',
    ]);
    const report1 = join(dir, 'report-1.json');
    const first = await cli(['factory', 'run', ...common(), '--report', report1], 900_000);
    expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
    const report = JSON.parse(readFileSync(report1, 'utf8'));
    expect(report.result).toBe('Succeeded');
    expect(report.actions.map(key).sort()).toEqual(plan.actions.map(key).sort());
    expect(first.stderr).toMatch(/build Linux\/Web: customising/);

    // Three Generalized versions holding what their customisations wrote; the factory's account is gone.
    for (const [image, file, text] of [
      ['Linux-Web', 'web.txt', 'nginx-ready'],
      ['Linux-Db', 'db.txt', 'postgres-ready'],
      ['Tools-Editor', 'editor.txt', 'editor-ready'],
    ] as const) {
      expect((await fileIn(image, '1.0.0', `/srv/${file}`)).trim()).toBe(text);
    }
    expect(await fileIn('Linux-Web', '1.0.0', '/etc/passwd')).not.toMatch(/labfactory/);
    expect(await fileIn('Linux-Web', '1.0.0', '/srv/db.txt')).toBe('');
    // Available exactly where labs.json says.
    expect(await enabled('science')).toEqual(['Linux-Db', 'Linux-Web']);
    expect(await enabled('arts')).toEqual(['Tools-Editor']);
    const editor = await t.call(
      'GET',
      `/subscriptions/${t.sub}/resourceGroups/factory-images/providers/Microsoft.Compute/galleries/golden/images/Tools-Editor/versions/1.0.0?${COMPUTE}&$expand=ReplicationStatus`,
    );
    expect(editor.body.properties.replicationStatus.summary.map((s: any) => `${s.region}:${s.state}`).sort()).toEqual(['site-a:Completed', 'site-b:Completed']);
    expect(
      (await t.call('GET', `/subscriptions/${t.sub}/resourceGroups/factory/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01`)).body.value,
    ).toEqual([]);

    // A second run changes nothing.
    const again = await cli(['factory', 'run', ...common(), '--report', join(dir, 'report-2.json')], 300_000);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).actions.filter((a: any) => a.kind !== 'skip')).toEqual([]);

    // A lab on Linux-Db 1.0.0 (no template: it uses the version directly).
    const lab = `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.LabServices/labs/db-course`;
    const made = await t.call('PUT', `${lab}?${LS}`, {
      location: 'site-a',
      properties: {
        labPlanId: `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.LabServices/labPlans/science`,
        title: 'Databases',
        virtualMachineProfile: {
          createOption: 'Image',
          imageReference: { id: `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.LabServices/labPlans/science/images/Linux-Db` },
          sku: { name: 'Standard_B1s', capacity: 0 },
          usageQuota: 'PT10H',
          adminUser: { username: 'teacher', password: 'Secret-123' },
        },
      },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect((await waitForOperation(t, made.headers['azure-asyncoperation'] as string, 60_000)).status).toBe('Succeeded');

    // Change one recipe: one new version.
    write({ 'Linux/Db.json': recipe('db.txt', 'postgres-17') });
    const plan3 = JSON.parse((await cli(['factory', 'plan', ...common()])).stdout);
    const third = await cli(['factory', 'run', ...common(), '--report', join(dir, 'report-3.json')], 600_000);
    expect(third.code, third.stderr).toBe(0);
    const r3 = JSON.parse(third.stdout);
    expect(r3.actions.filter((a: any) => a.kind !== 'skip').map(key)).toEqual(['build build Linux/Db 1.0.1  site-a']);
    expect(r3.actions.map(key).sort()).toEqual(plan3.actions.map(key).sort());
    expect(await versionNames('Linux-Db')).toEqual(['1.0.0', '1.0.1']);
    expect((await fileIn('Linux-Db', '1.0.1', '/srv/db.txt')).trim()).toBe('postgres-17');

    // Retire to one version: 1.0.0 stays while the lab uses it, and goes once the lab is deleted.
    const retire = ['factory', 'retire', '--recipes', recipes(), '--labs', labsFile(), '--images-to-save', '1', '-o', 'json'];
    const kept = await cli(retire);
    expect(kept.code, kept.stderr).toBe(0);
    const keep = JSON.parse(kept.stdout).actions;
    expect(keep.map((a: any) => `${a.kind} ${a.image} ${a.version}`)).toEqual(['keep Linux-Db 1.0.0']);
    expect(keep[0].reason).toBe('still used by lab db-course');
    expect(await versionNames('Linux-Db')).toEqual(['1.0.0', '1.0.1']);
    const del = await t.call('DELETE', `${lab}?${LS}`);
    expect(del.status).toBeLessThan(300);
    if (del.headers['azure-asyncoperation']) await waitForOperation(t, del.headers['azure-asyncoperation'] as string, 60_000);
    const gone = await cli(retire);
    expect(JSON.parse(gone.stdout).actions.map((a: any) => `${a.kind} ${a.image} ${a.version} ${a.status}`)).toEqual(['delete Linux-Db 1.0.0 Succeeded']);
    expect(await versionNames('Linux-Db')).toEqual(['1.0.1']);
  }, 1_500_000);
});
