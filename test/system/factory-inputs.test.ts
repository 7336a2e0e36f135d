// The image factory's inputs: recipes found in a folder tree (the path is the
// image's identity), labs.json in the source scripts' format, and which
// recipes each lab account gets; every mistake is reported with its file,
// line and field before anything runs.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distribution, FactoryInputError, loadRecipes, parseLabsFile } from '../../src/factory/recipes.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'labforge-factory-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}

const recipe = (extra: Record<string, unknown> = {}) =>
  JSON.stringify(
    {
      base: { image: 'builtin/labforge-test-guest' },
      gallery: { resourceGroup: 'factory', name: 'golden' },
      customData: '#cloud-config\nruncmd: [echo hi]\n',
      ...extra,
    },
    null,
    2,
  );

const problemsOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof FactoryInputError) return err.problems.map((p) => `${p.file}${p.line ? `:${p.line}` : ''}${p.field ? ` ${p.field}` : ''}: ${p.message}`);
    throw err;
  }
  return [];
};

describe('factory recipes', () => {
  it('finds recipes at any depth and names each image by its path', () => {
    const dir = tree('ok', {
      'Linux/Web.json': recipe(),
      'Linux/Db.json': recipe({ timeoutMinutes: 30 }),
      'Windows/2022/Datacenter.json': recipe(),
      'README.md': '# not a recipe',
    });
    const recipes = loadRecipes(dir);
    expect(recipes.map((r) => [r.imagePath, r.imageName, r.timeoutMinutes])).toEqual([
      ['Linux/Db', 'Linux-Db', 30],
      ['Linux/Web', 'Linux-Web', 60],
      ['Windows/2022/Datacenter', 'Windows-2022-Datacenter', 60],
    ]);
    // The content hash follows what shapes the disk: an unchanged recipe is recognised, a changed one is not;
    // a longer timeout or another region is not a change of the image.
    expect(recipes[0]?.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(loadRecipes(dir)[0]?.contentHash).toBe(recipes[0]?.contentHash);
    const hashOf = (extra: Record<string, unknown>) => loadRecipes(tree('hash', { 'A.json': recipe(extra) }))[0]?.contentHash;
    expect(hashOf({ timeoutMinutes: 30, regions: ['site-b'], description: 'x' })).toBe(hashOf({}));
    expect(hashOf({ vmSize: 'Standard_B2s' })).not.toBe(hashOf({}));
    expect(hashOf({ customData: '#cloud-config\nruncmd: [echo other]\n' })).not.toBe(hashOf({}));
    // Scripts next to the recipe run at first boot after its runcmd; their content is part of the hash.
    const withScript = (body: string) => {
      const d = tree('scripted', { 'A.json': recipe({ scripts: ['setup.sh'] }), 'setup.sh': body });
      return loadRecipes(d)[0];
    };
    const one = withScript('#!/bin/sh\necho one > /srv/one\n');
    expect(one?.userData).toMatch(/runcmd:\n {2}- echo hi\n {2}- \/var\/lib\/labforge-factory\/01-setup\.sh\n/);
    expect(one?.userData).toMatch(
      /write_files:\n {2}- path: \/var\/lib\/labforge-factory\/01-setup\.sh\n {4}permissions: "0755"\n {4}content: \|\n {6}#!\/bin\/sh\n/,
    );
    expect(withScript('#!/bin/sh\necho two > /srv/two\n')?.contentHash).not.toBe(one?.contentHash);
  });

  it('reports every broken recipe with file, line and field', () => {
    const dir = tree('bad', {
      'a/Broken.json': '{\n  "base": { "image": "x" },\n  "gallery": }\n',
      'a/Unknown.json': recipe({ colour: 'blue' }),
      'a/NoGallery.json': JSON.stringify({ base: { image: 'x' } }),
      'a/Script.json': recipe({ customData: 'echo not cloud-config' }),
      'a/Timeout.json': recipe({ timeoutMinutes: 0 }),
      'a/Users.json': recipe({ customData: '#cloud-config\nusers: [bob]\n' }),
      'a/NoScript.json': recipe({ scripts: ['setup.sh'] }),
    });
    const problems = problemsOf(() => loadRecipes(dir));
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^a\/Broken\.json:3: not valid JSON/),
        expect.stringMatching(/^a\/Unknown\.json:\d+ colour: unknown field 'colour'$/),
        expect.stringMatching(/^a\/NoGallery\.json.*gallery/),
        expect.stringMatching(/^a\/Script\.json customData: the customisation must be a cloud-init document/),
        expect.stringMatching(/^a\/Timeout\.json:\d+ timeoutMinutes:/),
        expect.stringMatching(/^a\/Users\.json customData: the customisation must not set users: the build VM's account/),
        expect.stringMatching(/^a\/NoScript\.json:\d+ scripts\.0: cannot be read: ENOENT/),
      ]),
    );
  });
});

describe('labs.json', () => {
  const labs = (o: unknown) => JSON.stringify(o, null, 2);

  it('reads the source scripts format and says which lab account gets which recipes', () => {
    const dir = tree('dist', { 'Linux/Web.json': recipe(), 'Linux/Db.json': recipe(), 'Windows/Desk.json': recipe() });
    const recipes = loadRecipes(dir);
    const entries = parseLabsFile(
      labs({
        Labs: [
          { SubscriptionId: 's', ResourceGroup: 'school', LabName: 'science', ImagePaths: ['Linux'] },
          { SubscriptionId: 's', ResourceGroup: 'school', LabName: 'arts', ImagePaths: ['Windows/Desk.json', 'Mac'] },
        ],
      }),
      'labs.json',
    );
    const d = distribution(recipes, entries);
    expect(d.targets.map((x) => [x.lab.LabName, x.recipes.map((r) => r.imagePath)])).toEqual([
      ['science', ['Linux/Db', 'Linux/Web']],
      ['arts', ['Windows/Desk']],
    ]);
    expect(d.unmatched).toEqual([{ lab: 'arts', path: 'Mac' }]);
    expect(d.unused).toEqual([]);
  });

  it('refuses malformed files with the line, unknown fields, and duplicates', () => {
    expect(problemsOf(() => parseLabsFile('{\n  "Labs": [\n    { "LabName": "a", }\n  ]\n}\n', 'labs.json'))).toEqual([
      expect.stringMatching(/^labs\.json:3: not valid JSON/),
    ]);
    expect(
      problemsOf(() => parseLabsFile(labs({ Labs: [{ SubscriptionId: 's', ResourceGroup: 'r', LabName: 'a', ImagePaths: ['x'], Extra: 1 }] }), 'labs.json')),
    ).toEqual([expect.stringMatching(/^labs\.json:\d+ Labs\.0/)]);
    expect(problemsOf(() => parseLabsFile(labs({ Labs: [{ SubscriptionId: 's', ResourceGroup: 'r', ImagePaths: ['x'] }] }), 'labs.json'))).toEqual([
      expect.stringMatching(/^labs\.json.*Labs\.0.*LabName/),
    ]);
    const dup = problemsOf(() =>
      parseLabsFile(
        labs({
          Labs: [
            { SubscriptionId: 's', ResourceGroup: 'r', LabName: 'a', ImagePaths: ['Linux', 'linux/'] },
            { SubscriptionId: 's', ResourceGroup: 'r', LabName: 'A', ImagePaths: ['x'] },
          ],
        }),
        'labs.json',
      ),
    );
    expect(dup).toEqual([
      "labs.json Labs.0.ImagePaths.1: 'linux/' is listed twice for lab account 'a'",
      "labs.json Labs.1.LabName: lab account 'A' is listed twice (entries 0 and 1); merge their ImagePaths",
    ]);
  });
});

describe('labforge factory validate', () => {
  it('shows what each lab account gets, warns about paths that match nothing, and exits 7 with the problems', async () => {
    ensureBuilt();
    const dir = tree('cli', { 'Linux/Web.json': recipe(), 'Other/Tool.json': recipe() });
    const labsFile = join(root, 'labs-cli.json');
    writeFileSync(labsFile, JSON.stringify({ Labs: [{ SubscriptionId: 's', ResourceGroup: 'school', LabName: 'science', ImagePaths: ['Linux', 'Mac'] }] }));
    const ok = await runCli(['factory', 'validate', '--recipes', dir, '--labs', labsFile]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Linux\/Web +Linux-Web +builtin\/labforge-test-guest +factory\/golden +60 min/);
    expect(ok.stdout).toMatch(/school\/science +Linux-Web/);
    expect(ok.stderr).toContain("warning: 'Mac' (lab account science) matches no recipe");
    expect(ok.stderr).toContain('warning: no lab account receives Other/Tool');
    writeFileSync(labsFile, '{\n  "Labs": [\n    { "LabName": "a", }\n  ]\n}\n');
    const bad = await runCli(['factory', 'validate', '--recipes', dir, '--labs', labsFile]);
    expect(bad.code).toBe(7);
    expect(bad.stderr).toMatch(/labs-cli\.json:3: not valid JSON/);
  }, 60_000);
});
