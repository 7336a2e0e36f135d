// The image factory's inputs: golden-image recipes (JSON files in a folder
// tree; a recipe's path is its image's identity, as ImagePath in the source
// scripts) and the labs.json file that says which lab accounts get which
// images. Both are checked before anything runs, with errors that give the
// file, line and field.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import YAML from 'yaml';

const RecipeSchema = Type.Object(
  {
    description: Type.Optional(Type.String()),
    base: Type.Object(
      {
        image: Type.String({ minLength: 1 }),
        version: Type.Optional(Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$' })),
      },
      { additionalProperties: false },
    ),
    vmSize: Type.Optional(Type.String({ minLength: 1 })),
    customData: Type.Optional(Type.String({ minLength: 1 })),
    customDataFile: Type.Optional(Type.String({ minLength: 1 })),
    scripts: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 50 })),
    timeoutMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 60 })),
    gallery: Type.Object({ resourceGroup: Type.String({ minLength: 1 }), name: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    regions: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
  },
  { additionalProperties: false },
);
export type RecipeFile = Static<typeof RecipeSchema>;

export interface Recipe extends RecipeFile {
  /** The recipe's path in the factory folder without ".json", with '/' separators: the image's identity. */
  imagePath: string;
  /** The image definition's name: the path with '/' turned into '-'. */
  imageName: string;
  file: string;
  /** The cloud-init user-data the build VM applies (customData or customDataFile, with the scripts added). */
  userData: string | undefined;
  timeoutMinutes: number;
  /** Hash of everything that shapes the image: an unchanged recipe is not built again. */
  contentHash: string;
}

export interface Problem {
  file: string;
  line?: number;
  field?: string;
  message: string;
}

export class FactoryInputError extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}

export const formatProblem = (p: Problem) => `${p.file}${p.line ? `:${p.line}` : ''}${p.field ? ` (${p.field})` : ''}: ${p.message}`;

/** Where a JSON syntax error is: the position V8 gives, else the line of the context it quotes, else YAML's reading. */
function errorLine(text: string, message: string): number | undefined {
  const pos = /position (\d+)/.exec(message);
  if (pos) return text.slice(0, Number(pos[1])).split('\n').length;
  // V8 quotes the text around the error: `Unexpected token '}', ..."gallery": }" is not valid JSON`.
  const quoted = /, "?(?:\.\.\.)?([\s\S]*?)(?:\.\.\.)?" is not valid JSON$/.exec(message)?.[1];
  if (quoted) {
    const at = text.indexOf(quoted.replace(/\\n/g, '\n').replace(/\\"/g, '"'));
    if (at >= 0)
      return text
        .slice(0, at + quoted.length)
        .trimEnd()
        .split('\n').length;
  }
  const doc = YAML.parseDocument(text);
  return doc.errors[0]?.linePos?.[0]?.line;
}

/** JSON.parse with the line of a syntax error. */
function parseJson(text: string, file: string): { value?: unknown; problem?: Problem } {
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    const message = (err as Error).message;
    const line = errorLine(text, message);
    const reason = message.replace(/ in JSON at position \d+.*$/, '').replace(/, "?(?:\.\.\.)?[\s\S]*" is not valid JSON$/, '');
    return { problem: { file, ...(line ? { line } : {}), message: `not valid JSON: ${reason}` } };
  }
}

/** Schema errors as problems: unknown fields by name, each with its line. */
function schemaProblems(errors: { instancePath: string; message: string; params?: unknown }[], text: string, file: string): Problem[] {
  const unknown = errors.filter((e) => e.message === 'schema is false');
  const rest = errors.filter((e) => e.message !== 'schema is false' && !(unknown.length && /additional properties/.test(e.message)));
  return [
    ...unknown.map((e) => {
      const line = lineOf(text, e.instancePath);
      const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
      return { file, ...(line ? { line } : {}), field, message: `unknown field '${field.split('.').pop()}'` };
    }),
    ...rest.map((e) => {
      const line = lineOf(text, e.instancePath);
      return { file, ...(line ? { line } : {}), field: e.instancePath.replace(/^\//, '').replace(/\//g, '.') || undefined, message: e.message };
    }),
  ];
}

/** The line on which a JSON field (last segment of a path) first appears, for messages. */
function lineOf(text: string, path: string): number | undefined {
  const key = path.split('/').filter(Boolean).pop();
  if (!key || /^\d+$/.test(key)) return undefined;
  const i = text.indexOf(`"${key}"`);
  return i < 0 ? undefined : text.slice(0, i).split('\n').length;
}

/** A cloud-config document to add to (an empty mapping when there is none yet). */
export function cloudConfig(userData: string | undefined): YAML.Document {
  const doc = YAML.parseDocument(userData ?? '#cloud-config\n');
  if (doc.contents === null) doc.contents = doc.createNode({}) as never;
  return doc;
}

/** Appends to a list of the document (runcmd, write_files), creating it, in block style: the added items may
 * hold characters a flow sequence would need to quote, and the test guest's reader takes block lists best. */
export function appendTo(doc: YAML.Document, key: string, item: unknown): void {
  const list = doc.get(key);
  if (YAML.isSeq(list)) {
    list.flow = false;
    list.add(doc.createNode(item));
  } else doc.set(key, [item]);
}

/** The document as user-data: `#cloud-config` first, no folded lines. */
export const cloudConfigText = (doc: YAML.Document) =>
  `#cloud-config\n${doc
    .toString({ lineWidth: 0 })
    .replace(/^#cloud-config\n/, '')
    .trimStart()}`;

/** cloud-config keys the server sets itself (see parseCustomData on the server). */
const RESERVED_KEYS = ['users', 'hostname', 'fqdn', 'password', 'chpasswd'];

const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,78}[A-Za-z0-9]$|^[A-Za-z0-9]$/;

/** Reads every recipe under `dir` (any depth); throws FactoryInputError listing every problem found. */
export function loadRecipes(dir: string): Recipe[] {
  const problems: Problem[] = [];
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json')) files.push(p);
    }
  };
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    walk(dir);
  } catch (err) {
    throw new FactoryInputError([{ file: dir, message: `the recipe folder cannot be read: ${(err as Error).message}` }]);
  }
  const out: Recipe[] = [];
  const names = new Map<string, string>();
  for (const file of files) {
    const rel = relative(dir, file);
    const text = readFileSync(file, 'utf8');
    const parsed = parseJson(text, rel);
    if (parsed.problem) {
      problems.push(parsed.problem);
      continue;
    }
    const errors = [...Value.Errors(RecipeSchema, parsed.value)];
    if (errors.length) {
      problems.push(...schemaProblems(errors, text, rel).slice(0, 5));
      continue;
    }
    const r = parsed.value as RecipeFile;
    const imagePath = rel.slice(0, -'.json'.length).split(sep).join('/');
    const imageName = imagePath.replace(/\//g, '-');
    if (!IMAGE_NAME.test(imageName)) {
      problems.push({
        file: rel,
        message: `the image name '${imageName}' made from the path is not valid: use letters, digits, '.', '_' and '-' in file and folder names`,
      });
      continue;
    }
    const clash = names.get(imageName.toLowerCase());
    if (clash) {
      problems.push({ file: rel, message: `its image name '${imageName}' is the same as that of ${clash}; rename one of them` });
      continue;
    }
    names.set(imageName.toLowerCase(), rel);
    if (r.customData && r.customDataFile) {
      problems.push({ file: rel, line: lineOf(text, 'customDataFile'), field: 'customDataFile', message: 'give customData or customDataFile, not both' });
      continue;
    }
    let userData = r.customData;
    if (r.customDataFile) {
      try {
        userData = readFileSync(join(file, '..', r.customDataFile), 'utf8');
      } catch (err) {
        problems.push({ file: rel, line: lineOf(text, 'customDataFile'), field: 'customDataFile', message: `cannot be read: ${(err as Error).message}` });
        continue;
      }
    }
    if (userData !== undefined && !userData.startsWith('#cloud-config')) {
      problems.push({
        file: rel,
        field: r.customDataFile ? 'customDataFile' : 'customData',
        message: 'the customisation must be a cloud-init document starting with #cloud-config',
      });
      continue;
    }
    if (userData !== undefined) {
      const field = r.customDataFile ? 'customDataFile' : 'customData';
      let doc: unknown;
      try {
        doc = YAML.parse(userData);
      } catch (err) {
        problems.push({ file: rel, field, message: `the customisation is not valid YAML: ${(err as Error).message.split('\n')[0]}` });
        continue;
      }
      if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) {
        problems.push({ file: rel, field, message: 'the customisation must be a YAML mapping of cloud-config keys (runcmd, write_files, …)' });
        continue;
      }
      const reserved = Object.keys(doc ?? {}).filter((k) => RESERVED_KEYS.includes(k));
      if (reserved.length) {
        problems.push({
          file: rel,
          field,
          message: `the customisation must not set ${reserved.join(', ')}: the build VM's account and host name come from the factory, and every VM made from the image gets its own`,
        });
        continue;
      }
    }
    // Scripts (files next to the recipe) run at first boot after the cloud-config's own runcmd, in order.
    if (r.scripts) {
      const doc = cloudConfig(userData);
      let bad = false;
      r.scripts.forEach((name, i) => {
        let content: string;
        try {
          content = readFileSync(join(file, '..', name), 'utf8');
        } catch (err) {
          problems.push({ file: rel, line: lineOf(text, 'scripts'), field: `scripts.${i}`, message: `cannot be read: ${(err as Error).message}` });
          bad = true;
          return;
        }
        const path = `/var/lib/labforge-factory/${String(i + 1).padStart(2, '0')}-${name.replace(/[^A-Za-z0-9._-]/g, '_')}`;
        appendTo(doc, 'write_files', { path, permissions: '0755', content });
        appendTo(doc, 'runcmd', path);
      });
      if (bad) continue;
      userData = cloudConfigText(doc);
    }
    // What shapes the disk: the base, the size, the customisation (scripts included), the gallery. Regions,
    // timeout and description do not: a new region is a replication, not a new build.
    const { regions: _regions, timeoutMinutes: _timeout, description: _description, customDataFile: _file, customData: _data, scripts: _scripts, ...shape } = r;
    const contentHash = createHash('sha256').update(JSON.stringify({ shape, userData })).digest('hex');
    out.push({ ...r, imagePath, imageName, file: rel, userData, timeoutMinutes: r.timeoutMinutes ?? 60, contentHash });
  }
  if (problems.length) throw new FactoryInputError(problems);
  return out;
}

export interface LabsEntry {
  SubscriptionId: string;
  ResourceGroup: string;
  LabName: string;
  ImagePaths: string[];
}

const LabsSchema = Type.Object(
  {
    Labs: Type.Array(
      Type.Object(
        {
          SubscriptionId: Type.String({ minLength: 1 }),
          ResourceGroup: Type.String({ minLength: 1 }),
          LabName: Type.String({ minLength: 1 }),
          ImagePaths: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** Reads labs.json in the source scripts' format; every problem is reported with its line and field. */
export function parseLabsFile(text: string, file: string): LabsEntry[] {
  const parsed = parseJson(text, file);
  if (parsed.problem) throw new FactoryInputError([parsed.problem]);
  const errors = [...Value.Errors(LabsSchema, parsed.value)];
  if (errors.length) throw new FactoryInputError(schemaProblems(errors, text, file).slice(0, 10));
  const labs = (parsed.value as { Labs: LabsEntry[] }).Labs;
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  labs.forEach((l, i) => {
    const key = `${l.SubscriptionId}/${l.ResourceGroup}/${l.LabName}`.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined)
      problems.push({
        file,
        field: `Labs.${i}.LabName`,
        message: `lab account '${l.LabName}' is listed twice (entries ${first} and ${i}); merge their ImagePaths`,
      });
    else seen.set(key, i);
    const paths = new Set<string>();
    l.ImagePaths.forEach((p, j) => {
      const norm = normalizePath(p);
      if (paths.has(norm)) problems.push({ file, field: `Labs.${i}.ImagePaths.${j}`, message: `'${p}' is listed twice for lab account '${l.LabName}'` });
      paths.add(norm);
    });
  });
  if (problems.length) throw new FactoryInputError(problems);
  return labs;
}

const normalizePath = (p: string) =>
  p
    .replace(/\\/g, '/')
    .replace(/^\/+|\/+$/g, '')
    .replace(/\.json$/i, '')
    .toLowerCase();

/** The recipes an ImagePaths entry selects: a folder selects every recipe under it, a file one recipe. */
export function selectRecipes(recipes: Recipe[], imagePath: string): Recipe[] {
  const p = normalizePath(imagePath);
  return recipes.filter((r) => {
    const own = r.imagePath.toLowerCase();
    return own === p || p === '' || own.startsWith(`${p}/`);
  });
}

/** Which lab accounts get which recipes, with the paths that match nothing and the recipes no account gets. */
export function distribution(recipes: Recipe[], labs: LabsEntry[]) {
  const unmatched: { lab: string; path: string }[] = [];
  const targets = labs.map((l) => {
    const chosen = new Map<string, Recipe>();
    for (const path of l.ImagePaths) {
      const hit = selectRecipes(recipes, path);
      if (!hit.length) unmatched.push({ lab: l.LabName, path });
      for (const r of hit) chosen.set(r.imagePath, r);
    }
    return { lab: l, recipes: [...chosen.values()] };
  });
  const used = new Set(targets.flatMap((x) => x.recipes.map((r) => r.imagePath)));
  return { targets, unmatched, unused: recipes.filter((r) => !used.has(r.imagePath)) };
}
