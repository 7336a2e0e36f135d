// The image factory's engine, a client of the labforge API (as the source
// scripts are clients of Azure's): it reads what the server has, works out
// the actions that build, distribute and retire call for, and carries them
// out as bounded, retried jobs.
//
// Everything it needs to resume lives on the server, in tags:
//   - build VMs (resource group `factoryGroup`): ImagePath, FactoryRecipeHash;
//   - image definitions: ImagePath;
//   - versions: ImagePath, FactoryRecipeHash, FactoryBase (which base version
//     it was built on), FactoryBuildSeconds.
// So a run that was interrupted is resumed by running again: a build VM that
// exists is waited for, captured or replaced; a capture in progress is waited
// for; nothing that already happened is done twice.
//
// `plan` reads the state once and simulates each phase on it; `run` re-reads
// the state before each phase, so on an unchanged server both list the same
// actions.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ApiClient, ApiError, ConnectionError, parseOperationRef } from '../client/api-client.js';
import type { ImageVersion, LabPlan, VirtualMachine } from '../contract/index.js';
import { type JobOutcome, runJobs } from './jobs.js';
import {
  appendTo,
  cloudConfig,
  cloudConfigText,
  distribution,
  FactoryInputError,
  formatProblem,
  type LabsEntry,
  type Problem,
  type Recipe,
} from './recipes.js';

export const TAG = {
  imagePath: 'ImagePath',
  ignore: 'FactoryIgnore',
  recipeHash: 'FactoryRecipeHash',
  base: 'FactoryBase',
  buildSeconds: 'FactoryBuildSeconds',
} as const;

const BUILTIN_GROUP = 'labforge-builtin';
const BUILTIN_GALLERY = 'builtin';
const FACTORY_USER = 'labfactory';

export type ActionKind = 'create-gallery' | 'build' | 'skip' | 'cleanup' | 'attach' | 'replicate' | 'enable' | 'disable' | 'delete' | 'keep';

export interface Action {
  phase: 'build' | 'distribute' | 'retire';
  kind: ActionKind;
  /** Image definition name (from the recipe's path). */
  image?: string;
  imagePath?: string;
  version?: string;
  /** Lab account (lab plan) as RESOURCEGROUP/NAME. */
  lab?: string;
  gallery?: string;
  vm?: string;
  regions?: string[];
  reason?: string;
  sizeGB?: number;
  /** For builds: how long the last build took, or the recipe's timeout when there is none. */
  estimateSeconds?: number;
  /** Where the estimate comes from: the image's last build, or (none yet) the recipe's timeout, an upper bound. */
  estimateFrom?: 'last build' | 'timeout';
  usedBy?: string[];
}

export interface ActionResult extends Action, Partial<JobOutcome> {}

export type FactoryLog = (line: string) => void;

export interface FactoryOptions {
  client: ApiClient;
  /** The subscription of the factory's galleries and build VMs. */
  subscription: string;
  /** The resource group the build VMs run in. */
  factoryGroup: string;
  maxConcurrentJobs: number;
  retries: number;
  /** Build recipes even when unchanged. */
  force?: boolean;
  imagesToSave: number;
  log: FactoryLog;
  /** How often to look at VMs and operations (default 2 s). */
  pollMs?: number;
  retryDelayMs?: number;
  /** Called whenever a job starts or ends (for reports and tests). */
  onJob?: (event: 'start' | 'end', action: Action) => void;
}

// ---- the server's state, as the factory sees it ----

interface VersionInfo {
  name: string;
  state: string;
  tags: Record<string, string>;
  targetRegions: string[];
  completed: string[];
  inProgress: string[];
  sizeGB: number;
  usedBy: string[];
}
interface ImageInfo {
  name: string;
  tags: Record<string, string>;
  /** Newest first. */
  versions: VersionInfo[];
}
interface GalleryInfo {
  key: string;
  rg: string;
  name: string;
  id: string;
  exists: boolean;
  location?: string;
  images: Map<string, ImageInfo>;
}
interface PlanInfo {
  entry: LabsEntry;
  label: string;
  plan: LabPlan;
  regions: string[];
  /** Image names (lower case) enabled in the plan. */
  enabled: Set<string>;
  recipes: Recipe[];
}
interface BaseInfo {
  /** The version's ARM id: what the build VM boots. */
  versionId: string;
  version: string;
  osType: string;
  hyperVGeneration: string;
  sizeGB: number;
  /** Short hash of the version id, kept in the FactoryBase tag. */
  stamp: string;
}
export interface FactoryState {
  recipes: Recipe[];
  labs: LabsEntry[];
  galleries: Map<string, GalleryInfo>;
  plans: PlanInfo[];
  vms: VirtualMachine[];
  bases: Map<string, BaseInfo>;
  defaultRegion: string;
  warnings: string[];
}

const lc = (s: string) => s.toLowerCase();
const galleryKey = (r: Recipe) => lc(`${r.gallery.resourceGroup}/${r.gallery.name}`);
const galleryId = (sub: string, rg: string, name: string) => `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/galleries/${name}`;
const shortHash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/** Version numbers compared as numbers, part by part. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** The version after the newest one: 1.0.0 first, then the patch number grows. */
export function nextVersion(existing: string[]): string {
  const top = [...existing].sort(compareVersions).pop();
  if (!top) return '1.0.0';
  const [maj = 1, min = 0, pat = 0] = top.split('.').map(Number);
  return `${maj}.${min}.${pat + 1}`;
}

/** The name of a recipe's build VM: readable, unique per image path, within the 64-character limit. */
export function buildVmName(r: Recipe): string {
  const slug = r.imageName.replace(/[^A-Za-z0-9-]/g, '-').replace(/-+/g, '-');
  return `lf-${slug.slice(0, 50).replace(/-$/, '')}-${shortHash(r.imagePath).slice(0, 6)}`;
}

const isNotFound = (err: unknown) => err instanceof ApiError && err.status === 404;
async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function versionInfo(v: ImageVersion): VersionInfo {
  const summary = v.properties.replicationStatus?.summary ?? [];
  return {
    name: v.name,
    state: v.properties.provisioningState ?? 'Unknown',
    tags: v.tags ?? {},
    targetRegions: (v.properties.publishingProfile?.targetRegions ?? []).map((t) => lc(t.name)),
    completed: summary.filter((s) => s.state === 'Completed').map((s) => lc(s.region)),
    inProgress: summary.filter((s) => s.state === 'Replicating' || s.state === 'InProgress' || s.state === 'Queued').map((s) => lc(s.region)),
    sizeGB: v.properties.storageProfile?.osDiskImage?.sizeInGB ?? 0,
    usedBy: (v.properties as { usedBy?: string[] }).usedBy ?? [],
  };
}

/** Splits a recipe's base reference: builtin/NAME, RG/GALLERY/IMAGE, or a full image id. */
function baseRef(sub: string, image: string): { sub: string; rg: string; gallery: string; image: string } | undefined {
  const full = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/images\/([^/]+)$/i.exec(image);
  if (full) return { sub: full[1] as string, rg: full[2] as string, gallery: full[3] as string, image: full[4] as string };
  const parts = image.split('/');
  if (parts.length === 2 && lc(parts[0] as string) === 'builtin') return { sub, rg: BUILTIN_GROUP, gallery: BUILTIN_GALLERY, image: parts[1] as string };
  if (parts.length === 3 && parts.every(Boolean)) return { sub, rg: parts[0] as string, gallery: parts[1] as string, image: parts[2] as string };
  return undefined;
}

/** The line of the n-th occurrence of a field in labs.json, for messages about an entry. */
function entryLine(text: string | undefined, field: string, n: number): number | undefined {
  if (!text) return undefined;
  let at = -1;
  for (let i = 0; i <= n; i++) {
    at = text.indexOf(`"${field}"`, at + 1);
    if (at < 0) return undefined;
  }
  return text.slice(0, at).split('\n').length;
}

export interface StateInputs {
  recipes: Recipe[];
  labs: LabsEntry[];
  labsFile?: { name: string; text: string };
}

/** Reads what the server has for these inputs; problems (unknown lab accounts, wrong galleries, stray VMs) throw FactoryInputError. */
export async function readState(o: Pick<FactoryOptions, 'client' | 'subscription' | 'factoryGroup'>, inputs: StateInputs): Promise<FactoryState> {
  const { client, subscription: sub } = o;
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const locations = await client.listLocations(sub);
  const defaultRegion = lc(locations[0]?.name ?? '');

  // Bases.
  const bases = new Map<string, BaseInfo>();
  const baseLookups = new Map<string, { def: Awaited<ReturnType<ApiClient['getImage']>> | undefined; version: ImageVersion | undefined }>();
  for (const r of inputs.recipes) {
    const ref = baseRef(sub, r.base.image);
    if (!ref) {
      problems.push({
        file: r.file,
        field: 'base.image',
        message: `'${r.base.image}' is not an image reference: use builtin/NAME, RESOURCEGROUP/GALLERY/IMAGE or an image definition's id`,
      });
      continue;
    }
    // Many recipes share a base: read each (image, version) once.
    const lookupKey = lc(`${ref.sub}/${ref.rg}/${ref.gallery}/${ref.image}/${r.base.version ?? 'latest'}`);
    let lookup = baseLookups.get(lookupKey);
    if (!lookup) {
      const d = await orUndefined(client.getImage(ref.sub, ref.rg, ref.gallery, ref.image));
      lookup = { def: d, version: d ? await orUndefined(client.getVersion(ref.sub, ref.rg, ref.gallery, ref.image, r.base.version ?? 'latest')) : undefined };
      baseLookups.set(lookupKey, lookup);
    }
    const { def, version } = lookup;
    if (!def || !version) {
      problems.push({
        file: r.file,
        field: r.base.version && def ? 'base.version' : 'base.image',
        message: def
          ? `image ${r.base.image} has no ${r.base.version ? `version ${r.base.version}` : 'usable version'}`
          : `the base image ${r.base.image} does not exist on the server`,
      });
      continue;
    }
    if (def.properties.osState !== 'Generalized') {
      problems.push({
        file: r.file,
        field: 'base.image',
        message: `the base image ${r.base.image} is Specialized; a recipe builds on a Generalized image (its customisation runs at first boot)`,
      });
      continue;
    }
    const versionId = `${galleryId(ref.sub, ref.rg, ref.gallery)}/images/${def.name}/versions/${version.name}`;
    bases.set(r.imagePath, {
      versionId,
      version: version.name,
      osType: def.properties.osType ?? 'Linux',
      hyperVGeneration: def.properties.hyperVGeneration ?? 'V1',
      sizeGB: version.properties.storageProfile?.osDiskImage?.sizeInGB ?? 0,
      stamp: shortHash(versionId),
    });
  }

  // Galleries of the recipes, with their images and versions.
  const galleries = new Map<string, GalleryInfo>();
  for (const r of inputs.recipes) {
    const key = galleryKey(r);
    if (galleries.has(key)) continue;
    const g = await orUndefined(client.getGallery(sub, r.gallery.resourceGroup, r.gallery.name));
    const info: GalleryInfo = {
      key,
      rg: r.gallery.resourceGroup,
      name: r.gallery.name,
      id: lc(galleryId(sub, r.gallery.resourceGroup, r.gallery.name)),
      exists: !!g,
      ...(g ? { location: g.location } : {}),
      images: new Map(),
    };
    if (g) {
      for (const img of await client.listImages(sub, info.rg, info.name)) {
        const versions = (await client.listVersions(sub, info.rg, info.name, img.name, { expandReplication: true })).map(versionInfo);
        versions.sort((a, b) => compareVersions(b.name, a.name));
        info.images.set(lc(img.name), { name: img.name, tags: img.tags ?? {}, versions });
      }
    }
    galleries.set(key, info);
  }

  // Lab accounts.
  const d = distribution(inputs.recipes, inputs.labs);
  for (const u of d.unmatched) warnings.push(`'${u.path}' (lab account ${u.lab}) matches no recipe`);
  if (inputs.labs.length) for (const r of d.unused) warnings.push(`no lab account receives ${r.imagePath}`);
  const plans: PlanInfo[] = [];
  const file = inputs.labsFile?.name ?? 'labs.json';
  for (const [i, t] of d.targets.entries()) {
    const e = t.lab;
    const line = entryLine(inputs.labsFile?.text, 'LabName', i);
    const at = { file, ...(line ? { line } : {}), field: `Labs.${i}.LabName` };
    const plan = await orUndefined(client.getLabPlan(e.SubscriptionId, e.ResourceGroup, e.LabName));
    if (!plan) {
      problems.push({
        ...at,
        message: `there is no lab account '${e.LabName}' in resource group '${e.ResourceGroup}' of subscription '${e.SubscriptionId}'; create it (labforge account create) or correct the entry`,
      });
      continue;
    }
    const wanted = new Set(t.recipes.map(galleryKey));
    if (wanted.size > 1) {
      problems.push({
        ...at,
        message: `lab account '${e.LabName}' would get images from ${wanted.size} galleries (${[...wanted].join(', ')}), but a lab account has one attached gallery; send it recipes of one gallery`,
      });
      continue;
    }
    const attached = plan.properties.sharedGalleryId ? lc(plan.properties.sharedGalleryId) : undefined;
    const target = [...wanted][0] ? galleries.get([...wanted][0] as string) : undefined;
    if (attached && target && attached !== target.id) {
      problems.push({
        ...at,
        message: `lab account '${e.LabName}' has gallery ${plan.properties.sharedGalleryId} attached, but its images are made in gallery ${target.rg}/${target.name}; attach that gallery to the lab account (labforge account attach-gallery) or change the recipes' gallery`,
      });
      continue;
    }
    const images = await client.listPlanImages(e.SubscriptionId, e.ResourceGroup, e.LabName, true);
    plans.push({
      entry: e,
      label: `${e.ResourceGroup}/${e.LabName}`,
      plan,
      regions: [...new Set([plan.location, ...(plan.properties.allowedRegions ?? [])].map(lc))],
      enabled: new Set(images.filter((x) => x.properties.enabledState === 'Enabled' && !x.properties.builtin).map((x) => lc(x.name))),
      recipes: t.recipes,
    });
  }

  // Galleries attached to the lab accounts that no recipe names any more: their factory images may need disabling.
  for (const p of plans) {
    const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)$/i.exec(
      p.plan.properties.sharedGalleryId ?? '',
    );
    if (!m || [...galleries.values()].some((g) => g.id === lc(p.plan.properties.sharedGalleryId as string))) continue;
    const [, gsub, grg, gname] = m as unknown as [string, string, string, string];
    const images = new Map<string, ImageInfo>();
    for (const img of (await orUndefined(client.listImages(gsub, grg, gname))) ?? [])
      images.set(lc(img.name), { name: img.name, tags: img.tags ?? {}, versions: [] });
    galleries.set(lc(`${grg}/${gname}`), {
      key: lc(`${grg}/${gname}`),
      rg: grg,
      name: gname,
      id: lc(p.plan.properties.sharedGalleryId as string),
      exists: true,
      images,
    });
  }

  // The factory's resource group: build VMs (ImagePath), VMs left alone (FactoryIgnore), nothing else.
  const vms = (await orUndefined(client.listVms(sub, o.factoryGroup))) ?? [];
  for (const vm of vms) {
    const tags = vm.tags ?? {};
    if (tags[TAG.imagePath] === undefined && tags[TAG.ignore] === undefined) {
      problems.push({
        file: `resource group ${o.factoryGroup}`,
        field: `virtualMachines/${vm.name}`,
        message: `VM '${vm.name}' in the factory has neither an ImagePath nor a FactoryIgnore tag; tag it FactoryIgnore to keep it there, or delete it`,
      });
    }
  }
  if (problems.length) throw new FactoryInputError(problems);
  return { recipes: inputs.recipes, labs: inputs.labs, galleries, plans, vms, bases, defaultRegion, warnings };
}

// ---- planning ----

const recipeRegions = (s: FactoryState, r: Recipe) => (r.regions?.length ? [...new Set(r.regions.map(lc))] : [s.defaultRegion]);
const imageOf = (s: FactoryState, r: Recipe) => s.galleries.get(galleryKey(r))?.images.get(lc(r.imageName));
const usable = (v: VersionInfo) => v.state === 'Succeeded' || v.state === 'Updating';
/** The version labs get: the newest one that finished. */
const latestOf = (img: ImageInfo | undefined) => img?.versions.find(usable);

/** What the build phase would do; `simulate` applies it to the state as if it had run. */
export function planBuild(s: FactoryState, o: Pick<FactoryOptions, 'force'>, simulate = false): Action[] {
  const out: Action[] = [];
  for (const g of s.galleries.values()) {
    if (!g.exists) {
      out.push({ phase: 'build', kind: 'create-gallery', gallery: `${g.rg}/${g.name}` });
      if (simulate) g.exists = true;
    }
  }
  const building = new Set<string>();
  for (const r of s.recipes) {
    const base = s.bases.get(r.imagePath);
    if (!base) continue;
    const img = imageOf(s, r);
    const versions = img?.versions ?? [];
    // Only the newest version counts: a recipe changed back to what an older version was built from is built again.
    const newest = versions[0];
    const same =
      newest && newest.tags[TAG.recipeHash] === r.contentHash && newest.tags[TAG.base] === base.stamp && newest.state !== 'Failed' ? newest : undefined;
    const common = { phase: 'build' as const, image: r.imageName, imagePath: r.imagePath };
    if (same && usable(same) && !o.force) {
      out.push({ ...common, kind: 'skip', version: same.name, reason: `unchanged since version ${same.name}` });
      continue;
    }
    const latest = versions[0];
    const seconds = Number(versions.find((v) => v.tags[TAG.buildSeconds])?.tags[TAG.buildSeconds]);
    const vm = s.vms.find((v) => v.tags?.[TAG.imagePath] === r.imagePath);
    let reason: string;
    let version: string;
    if (same && !usable(same)) {
      reason = `resume: version ${same.name} is being captured`;
      version = same.name;
    } else {
      version = nextVersion(versions.map((v) => v.name));
      if (vm && vm.tags?.[TAG.recipeHash] === r.contentHash) reason = 'resume: its build VM exists';
      else if (o.force && same) reason = 'forced';
      else if (!latest) reason = 'first build';
      else if (latest.state === 'Failed') reason = `the last build (${latest.name}) failed`;
      else if (latest.tags[TAG.recipeHash] !== r.contentHash) reason = 'recipe changed';
      else if (latest.tags[TAG.base] !== base.stamp) reason = `base image changed (now ${base.version})`;
      else reason = 'the last build did not finish';
    }
    building.add(r.imagePath);
    out.push({
      ...common,
      kind: 'build',
      version,
      reason,
      regions: recipeRegions(s, r),
      sizeGB: base.sizeGB,
      ...(Number.isFinite(seconds) && seconds > 0
        ? { estimateSeconds: seconds, estimateFrom: 'last build' as const }
        : { estimateSeconds: r.timeoutMinutes * 60, estimateFrom: 'timeout' as const }),
    });
    if (simulate) {
      const g = s.galleries.get(galleryKey(r)) as GalleryInfo;
      const image = g.images.get(lc(r.imageName)) ?? { name: r.imageName, tags: { [TAG.imagePath]: r.imagePath }, versions: [] };
      g.images.set(lc(r.imageName), image);
      image.versions = image.versions.filter((v) => v.name !== version);
      image.versions.unshift({
        name: version,
        state: 'Succeeded',
        tags: { [TAG.imagePath]: r.imagePath, [TAG.recipeHash]: r.contentHash, [TAG.base]: base.stamp },
        targetRegions: recipeRegions(s, r),
        completed: recipeRegions(s, r),
        inProgress: [],
        sizeGB: base.sizeGB,
        usedBy: [],
      });
      image.versions.sort((a, b) => compareVersions(b.name, a.name));
    }
  }
  // Build VMs nobody is building any more (their recipe is gone or its build finished).
  for (const vm of s.vms) {
    const path = vm.tags?.[TAG.imagePath];
    if (path !== undefined && !building.has(path)) out.push({ phase: 'build', kind: 'cleanup', vm: vm.name, imagePath: path });
  }
  if (simulate) s.vms = s.vms.filter((vm) => vm.tags?.[TAG.ignore] !== undefined);
  return out;
}

/** What the distribute phase would do: attach galleries, replicate latest versions to each lab account's regions, enable them. */
export function planDistribute(s: FactoryState, simulate = false): Action[] {
  const attach: Action[] = [];
  const enable: Action[] = [];
  const need = new Map<string, { r: Recipe; regions: Set<string>; labs: Set<string> }>();
  for (const p of s.plans) {
    const first = p.recipes[0];
    if (!first) continue;
    const g = s.galleries.get(galleryKey(first)) as GalleryInfo;
    if (!p.plan.properties.sharedGalleryId) {
      attach.push({ phase: 'distribute', kind: 'attach', lab: p.label, gallery: `${g.rg}/${g.name}` });
      if (simulate) p.plan.properties.sharedGalleryId = galleryId(g.id.split('/')[2] as string, g.rg, g.name);
    }
    for (const r of p.recipes) {
      const latest = latestOf(imageOf(s, r));
      if (!latest) continue;
      const n = need.get(r.imagePath) ?? { r, regions: new Set<string>(), labs: new Set<string>() };
      for (const region of p.regions) n.regions.add(region);
      n.labs.add(p.label);
      need.set(r.imagePath, n);
      if (!p.enabled.has(lc(r.imageName))) {
        enable.push({ phase: 'distribute', kind: 'enable', image: r.imageName, imagePath: r.imagePath, lab: p.label, version: latest.name });
        if (simulate) p.enabled.add(lc(r.imageName));
      }
    }
  }
  // The recipe's own regions too: adding one to a recipe replicates its latest version there.
  for (const r of s.recipes) {
    if (!latestOf(imageOf(s, r))) continue;
    const n = need.get(r.imagePath) ?? { r, regions: new Set<string>(), labs: new Set<string>() };
    for (const region of recipeRegions(s, r)) n.regions.add(region);
    need.set(r.imagePath, n);
  }
  const replicate: Action[] = [];
  for (const { r, regions, labs } of need.values()) {
    const latest = latestOf(imageOf(s, r)) as VersionInfo;
    const missing = [...regions].filter((x) => !latest.completed.includes(x)).sort();
    if (!missing.length) continue;
    replicate.push({
      phase: 'distribute',
      kind: 'replicate',
      image: r.imageName,
      imagePath: r.imagePath,
      version: latest.name,
      regions: missing,
      sizeGB: latest.sizeGB,
      reason: labs.size ? `for ${[...labs].join(', ')}` : "for the recipe's regions",
    });
    if (simulate) {
      latest.targetRegions = [...new Set([...latest.targetRegions, ...missing])];
      latest.completed = [...new Set([...latest.completed, ...missing])];
    }
  }
  for (const r of s.recipes) {
    if (!latestOf(imageOf(s, r)) && s.plans.some((p) => p.recipes.includes(r))) s.warnings.push(`${r.imagePath} has no finished version to distribute yet`);
  }
  return [...attach, ...replicate, ...enable];
}

/** What the retire phase would do: disable images a lab account no longer gets, delete versions beyond the newest N unless something uses them. */
export function planRetire(s: FactoryState, imagesToSave: number): Action[] {
  const out: Action[] = [];
  const recipePaths = new Set(s.recipes.map((r) => r.imagePath));
  for (const p of s.plans) {
    const selected = new Set(p.recipes.map((r) => lc(r.imageName)));
    const attached = p.plan.properties.sharedGalleryId ? lc(p.plan.properties.sharedGalleryId) : undefined;
    const g = [...s.galleries.values()].find((x) => x.id === attached);
    if (!g) continue;
    for (const img of g.images.values()) {
      const path = img.tags[TAG.imagePath];
      if (path === undefined || selected.has(lc(img.name)) || !p.enabled.has(lc(img.name))) continue;
      out.push({
        phase: 'retire',
        kind: 'disable',
        image: img.name,
        imagePath: path,
        lab: p.label,
        reason: recipePaths.has(path) ? `${path} is no longer in the lab account's ImagePaths` : `the recipe ${path} was removed`,
      });
    }
  }
  for (const r of s.recipes) {
    const img = imageOf(s, r);
    if (!img) continue;
    // Keep the newest N finished versions and anything still being made; failed ones always go.
    let finished = 0;
    for (const v of img.versions) {
      if (usable(v) && ++finished <= imagesToSave) continue;
      if (v.state !== 'Failed' && !usable(v)) continue;
      const common = { phase: 'retire' as const, image: r.imageName, imagePath: r.imagePath, version: v.name, sizeGB: v.sizeGB };
      if (v.usedBy.length) out.push({ ...common, kind: 'keep', usedBy: v.usedBy, reason: `still used by ${v.usedBy.join('; ')}` });
      else out.push({ ...common, kind: 'delete', reason: v.state === 'Failed' ? 'its build failed' : `older than the newest ${imagesToSave}` });
    }
  }
  return out;
}

/** Everything a run would do, from one reading of the server, changing nothing. */
export async function plan(o: FactoryOptions, inputs: StateInputs): Promise<{ actions: Action[]; warnings: string[] }> {
  const s = await readState(o, inputs);
  const actions = [...planBuild(s, o, true), ...planDistribute(s, true), ...planRetire(s, o.imagesToSave)];
  return { actions, warnings: s.warnings };
}

// ---- carrying actions out ----

/** The user-data a build VM gets: the recipe's, a deprovision step for Linux, and a power-off when it is done. */
export function buildUserData(userData: string | undefined, osType: string): string {
  const doc = cloudConfig(userData);
  if (osType === 'Linux') {
    // As waagent -deprovision+user and `cloud-init clean` do: the factory's own account and the instance state go.
    const step = [
      `userdel -r ${FACTORY_USER} 2>/dev/null || { sed -i '/^${FACTORY_USER}:/d' /etc/passwd /etc/shadow /etc/group /etc/gshadow 2>/dev/null; rm -rf /home/${FACTORY_USER}; }`,
      'if command -v cloud-init >/dev/null; then cloud-init clean --logs --machine-id; fi',
      'true',
    ].join('; ');
    appendTo(doc, 'runcmd', step);
  }
  if (!doc.has('power_state')) doc.set('power_state', { mode: 'poweroff' });
  return cloudConfigText(doc);
}

/** An OpenSSH public key whose private half is thrown away: the build VM's account accepts no password and no login. */
function throwawayKey(): string {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  const raw = der.subarray(der.length - 32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64')} labforge-factory`;
}

class Runner {
  constructor(
    readonly o: FactoryOptions,
    readonly s: FactoryState,
  ) {}

  get c() {
    return this.o.client;
  }
  get sub() {
    return this.o.subscription;
  }
  private get poll() {
    return this.o.pollMs ?? 2000;
  }

  /** Polls an operation until it ends; throws with the server's reason when it did not succeed. */
  async waitOp(url: string | undefined, what: string, timeoutMs = 6 * 3600_000, progress?: (pct: number, msg: string) => void): Promise<void> {
    if (!url) return;
    const ref = parseOperationRef(new URL(url).pathname);
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    for (;;) {
      let op: Awaited<ReturnType<ApiClient['getOperation']>> | undefined;
      try {
        op = (await this.c.getOperationWithRetry(ref.subscription ?? this.sub, ref.id)).operation;
      } catch (err) {
        if (!(err instanceof ConnectionError) && !(err instanceof ApiError && err.status >= 500)) throw err;
      }
      if (op && op.status !== 'InProgress') {
        if (op.status === 'Succeeded') return;
        const e = new Error(
          `${what} ${op.status === 'Canceled' ? 'was canceled' : 'failed'}: ${op.error?.message ?? op.properties.statusMessage ?? 'no reason given'}`,
        );
        throw e;
      }
      if (op && progress && (op.percentComplete ?? 0) !== last) {
        last = op.percentComplete ?? 0;
        progress(last, op.properties.statusMessage ?? '');
      }
      if (Date.now() > deadline)
        throw new Error(`${what} did not finish within ${Math.round(timeoutMs / 60_000)} min (operation ${ref.id} goes on on the server)`);
      await sleep(this.poll);
    }
  }

  async createGallery(a: Action): Promise<void> {
    const g = [...this.s.galleries.values()].find((x) => `${x.rg}/${x.name}` === a.gallery) as GalleryInfo;
    const r = this.s.recipes.find((x) => galleryKey(x) === g.key) as Recipe;
    const location = recipeRegions(this.s, r)[0] as string;
    if (!(await orUndefined(this.c.getResourceGroup(this.sub, g.rg)))) await this.c.putResourceGroup(this.sub, g.rg, { location });
    await this.c.putGallery(this.sub, g.rg, g.name, { location, properties: { description: 'Golden images built by the labforge image factory' } });
    g.exists = true;
  }

  async build(a: Action): Promise<void> {
    const r = this.s.recipes.find((x) => x.imagePath === a.imagePath) as Recipe;
    const base = this.s.bases.get(r.imagePath) as BaseInfo;
    const { resourceGroup: rg, name: gallery } = r.gallery;
    const regions = a.regions as string[];
    const region = regions[0] as string;
    const say = (m: string) => this.o.log(`build ${r.imagePath}: ${m}`);
    const started = Date.now();
    const vmName = buildVmName(r);
    const hashTags = { [TAG.imagePath]: r.imagePath, [TAG.recipeHash]: r.contentHash, [TAG.base]: base.stamp };

    // The image definition, the first time.
    if (!(await orUndefined(this.c.getImage(this.sub, rg, gallery, r.imageName)))) {
      say(`creating image definition ${r.imageName}`);
      await this.c.putImage(this.sub, rg, gallery, r.imageName, {
        location: region,
        tags: { [TAG.imagePath]: r.imagePath },
        properties: {
          osType: base.osType as 'Linux',
          osState: 'Generalized',
          hyperVGeneration: base.hyperVGeneration as 'V1',
          identifier: { publisher: 'labforge-factory', offer: (r.imagePath.split('/')[0] as string).slice(0, 64), sku: r.imageName },
          ...(r.description ? { description: r.description } : {}),
        },
      });
    }
    // A capture of this recipe already under way (an interrupted run): wait for it.
    const existing = await orUndefined(this.c.getVersion(this.sub, rg, gallery, r.imageName, a.version as string));
    if (existing && existing.tags?.[TAG.recipeHash] === r.contentHash && existing.properties.provisioningState !== 'Failed') {
      say(`version ${existing.name} is already being captured; waiting for it`);
      await this.waitVersion(rg, gallery, r.imageName, existing.name);
      await this.removeVm(vmName);
      return;
    }
    if (existing?.properties.provisioningState === 'Failed') {
      const d = await this.c.deleteVersion(this.sub, rg, gallery, r.imageName, existing.name);
      await this.waitOp(d.operationUrl, `deleting failed version ${existing.name}`);
    }

    // The build VM: reuse the one an interrupted run left when it is for this recipe, else start afresh.
    let vm = await orUndefined(this.c.getVm(this.sub, this.o.factoryGroup, vmName));
    if (vm && (vm.tags?.[TAG.recipeHash] !== r.contentHash || vm.tags?.[TAG.base] !== base.stamp || vm.properties.state === 'Failed')) {
      say(`replacing the build VM ${vmName} of an earlier build`);
      await this.c.deleteVm(this.sub, this.o.factoryGroup, vmName);
      vm = undefined;
    }
    if (!vm) {
      if (!(await orUndefined(this.c.getResourceGroup(this.sub, this.o.factoryGroup))))
        await this.c.putResourceGroup(this.sub, this.o.factoryGroup, { location: region }).catch((err: unknown) => {
          if (!(err instanceof ApiError && (err.status === 409 || err.status === 412))) throw err;
        });
      say(`starting build VM ${vmName} from ${r.base.image} ${base.version}`);
      const windows = base.osType === 'Windows';
      const created = await this.c.putVm(this.sub, this.o.factoryGroup, vmName, {
        location: region,
        tags: hashTags,
        properties: {
          hardwareProfile: { vmSize: r.vmSize ?? 'Standard_B1s' },
          storageProfile: { imageReference: { id: base.versionId } },
          osProfile: {
            // Windows computer names stop at 15 characters.
            computerName: r.imageName
              .toLowerCase()
              .replace(/[^a-z0-9-]/g, '-')
              .slice(0, windows ? 15 : 63)
              .replace(/^-+|-+$/g, ''),
            adminUsername: FACTORY_USER,
            customData: Buffer.from(buildUserData(r.userData, base.osType)).toString('base64'),
            // Nobody logs in to a build VM: Linux gets a key whose private half is thrown away, Windows a random password never kept.
            ...(windows
              ? { adminPassword: `Lf-${randomBytes(18).toString('base64url')}9a` }
              : { linuxConfiguration: { ssh: { publicKeys: [{ keyData: throwawayKey() }] } } }),
          },
        },
      });
      await this.waitOp(created.operationUrl, `creating build VM ${vmName}`);
      vm = await this.c.getVm(this.sub, this.o.factoryGroup, vmName);
    }

    // Wait for the guest to run the customisation and power off.
    if (!vm.properties.generalized) {
      const deadline = started + r.timeoutMinutes * 60_000;
      let lastNote = Date.now();
      say('customising (the guest powers off when done)');
      while (vm.properties.state !== 'Stopped') {
        if (vm.properties.state === 'Failed') throw new Error(`build VM ${vmName} failed: ${vm.properties.statusMessage ?? 'no reason given'}`);
        if (Date.now() > deadline) {
          await this.c.deleteVm(this.sub, this.o.factoryGroup, vmName).catch(() => undefined);
          throw new Error(
            `the customisation did not finish within ${r.timeoutMinutes} min: the guest did not power off. Check that it ends (power_state or a shutdown), or raise timeoutMinutes in ${r.file}`,
          );
        }
        if (Date.now() - lastNote > 30_000) {
          say(`still customising (${Math.round((Date.now() - started) / 1000)} s of at most ${r.timeoutMinutes} min)`);
          lastNote = Date.now();
        }
        await sleep(this.poll);
        vm = await this.c.getVm(this.sub, this.o.factoryGroup, vmName);
      }
      await this.c.generalizeVm(this.sub, this.o.factoryGroup, vmName);
    }

    // Capture as the next Generalized version.
    say(`capturing version ${a.version}`);
    const put = await this.c.putVersion(this.sub, rg, gallery, r.imageName, a.version as string, {
      location: region,
      tags: { ...hashTags, [TAG.buildSeconds]: String(Math.max(1, Math.round((Date.now() - started) / 1000))) },
      properties: {
        publishingProfile: { targetRegions: regions.map((name) => ({ name })) },
        storageProfile: { source: { virtualMachineId: vm.id } },
      },
    });
    await this.waitOp(put.operationUrl, `capturing ${r.imagePath} ${a.version}`, undefined, (pct) => say(`capture ${pct}%`));
    await this.waitVersion(rg, gallery, r.imageName, a.version as string);
    await this.removeVm(vmName);
    say(`version ${a.version} is ready (${Math.round((Date.now() - started) / 1000)} s)`);
  }

  /** Waits until a version has left Creating/Updating and every target region has its replica. */
  private async waitVersion(rg: string, gallery: string, image: string, version: string, timeoutMs = 6 * 3600_000): Promise<VersionInfo> {
    const deadline = Date.now() + timeoutMs;
    let shown = '';
    for (;;) {
      const raw = await this.c.getVersion(this.sub, rg, gallery, image, version, { expandReplication: true });
      const v = versionInfo(raw);
      // Each region's own progress, in steps of 10%, for the log.
      const progress = (raw.properties.replicationStatus?.summary ?? [])
        .filter((x) => x.state !== 'Completed')
        .map((x) => `${x.region} ${Math.floor((x.progress ?? 0) / 10) * 10}%`)
        .join(', ');
      if (progress && progress !== shown) this.o.log(`${image} ${version}: replicating to ${progress}`);
      shown = progress;
      if (v.state === 'Failed') throw new Error(`version ${version} of ${image} failed`);
      const failed = v.targetRegions.filter((x) => !v.completed.includes(x) && !v.inProgress.includes(x));
      if (usable(v) && failed.length && !v.inProgress.length) throw new Error(`replication of ${image} ${version} to ${failed.join(', ')} failed`);
      if (usable(v) && v.targetRegions.every((x) => v.completed.includes(x))) return v;
      if (Date.now() > deadline) throw new Error(`version ${version} of ${image} is still ${v.state} after ${Math.round(timeoutMs / 60_000)} min`);
      await sleep(this.poll);
    }
  }

  async removeVm(name: string): Promise<void> {
    await orUndefined(this.c.deleteVm(this.sub, this.o.factoryGroup, name));
  }

  async replicate(a: Action): Promise<void> {
    const r = this.s.recipes.find((x) => x.imagePath === a.imagePath) as Recipe;
    const { resourceGroup: rg, name: gallery } = r.gallery;
    const v = await this.c.getVersion(this.sub, rg, gallery, r.imageName, a.version as string);
    const current = (v.properties.publishingProfile?.targetRegions ?? []).map((t) => ({ name: lc(t.name), regionalReplicaCount: t.regionalReplicaCount ?? 1 }));
    const add = (a.regions as string[]).filter((x) => !current.some((t) => t.name === x));
    this.o.log(`replicate ${r.imagePath} ${a.version} to ${(a.regions as string[]).join(', ')}`);
    if (add.length) {
      const patch = await this.c.patchVersion(this.sub, rg, gallery, r.imageName, a.version as string, {
        properties: { publishingProfile: { targetRegions: [...current, ...add.map((name) => ({ name }))] } },
      });
      // The version's replication status shows each region's progress (the operation moves a region at a time).
      await this.waitVersion(rg, gallery, r.imageName, a.version as string);
      await this.waitOp(patch.operationUrl, `replicating ${r.imagePath} ${a.version}`);
      return;
    }
    await this.waitVersion(rg, gallery, r.imageName, a.version as string);
  }

  async attach(a: Action): Promise<void> {
    const p = this.s.plans.find((x) => x.label === a.lab) as PlanInfo;
    const [grg, gname] = (a.gallery as string).split('/') as [string, string];
    this.o.log(`attach gallery ${a.gallery} to lab account ${a.lab}`);
    await this.c.putLabPlan(
      p.entry.SubscriptionId,
      p.entry.ResourceGroup,
      p.entry.LabName,
      { properties: { sharedGalleryId: galleryId(this.sub, grg, gname) } },
      'PATCH',
    );
  }

  async setEnabled(a: Action, state: 'Enabled' | 'Disabled'): Promise<void> {
    const p = this.s.plans.find((x) => x.label === a.lab) as PlanInfo;
    this.o.log(`${state === 'Enabled' ? 'enable' : 'disable'} ${a.image} in lab account ${a.lab}`);
    await this.c.setPlanImage(p.entry.SubscriptionId, p.entry.ResourceGroup, p.entry.LabName, a.image as string, state);
  }

  async deleteVersion(a: Action): Promise<void> {
    const r = this.s.recipes.find((x) => x.imagePath === a.imagePath) as Recipe;
    this.o.log(`delete ${r.imagePath} ${a.version}`);
    try {
      const d = await this.c.deleteVersion(this.sub, r.gallery.resourceGroup, r.gallery.name, r.imageName, a.version as string);
      await this.waitOp(d.operationUrl, `deleting ${r.imagePath} ${a.version}`);
    } catch (err) {
      // Something started using it since the plan was made: it is kept, and that is not a failure.
      if (err instanceof ApiError && err.code === 'VersionInUse') {
        this.o.log(`keep ${r.imagePath} ${a.version}: ${err.message}`);
        a.kind = 'keep';
        a.reason = err.message;
        return;
      }
      throw err;
    }
  }

  async run(a: Action): Promise<void> {
    switch (a.kind) {
      case 'create-gallery':
        return this.createGallery(a);
      case 'build':
        return this.build(a);
      case 'cleanup':
        this.o.log(`delete build VM ${a.vm}`);
        return this.removeVm(a.vm as string);
      case 'attach':
        return this.attach(a);
      case 'replicate':
        return this.replicate(a);
      case 'enable':
        return this.setEnabled(a, 'Enabled');
      case 'disable':
        return this.setEnabled(a, 'Disabled');
      case 'delete':
        return this.deleteVersion(a);
      case 'skip':
      case 'keep':
        return;
    }
  }
}

/** Carries out actions in order of their groups; within a group, as bounded concurrent jobs. */
async function execute(o: FactoryOptions, s: FactoryState, groups: Action[][]): Promise<ActionResult[]> {
  const runner = new Runner(o, s);
  const results: ActionResult[] = [];
  for (const group of groups) {
    const work = group.filter((a) => a.kind !== 'skip' && a.kind !== 'keep');
    for (const a of group) if (a.kind === 'skip' || a.kind === 'keep') results.push({ ...a });
    const outcomes = await runJobs(
      work,
      {
        limit: o.maxConcurrentJobs,
        retries: o.retries,
        retryDelayMs: o.retryDelayMs ?? 5000,
        onRetry: (i, attempt, err) => o.log(`${describeAction(work[i] as Action)}: attempt ${attempt} failed (${err.message}); retrying`),
      },
      async (a) => {
        o.onJob?.('start', a);
        try {
          await runner.run(a);
        } finally {
          o.onJob?.('end', a);
        }
      },
    );
    outcomes.forEach((out, i) => {
      const a = work[i] as Action;
      if (out.status === 'Failed') o.log(`FAILED ${describeAction(a)}: ${out.error}`);
      results.push({ ...a, ...out });
    });
  }
  return results;
}

export interface RunReport {
  startedAt: string;
  finishedAt: string;
  result: 'Succeeded' | 'Failed';
  options: { maxConcurrentJobs: number; retries: number; imagesToSave: number; force: boolean; factoryGroup: string };
  actions: ActionResult[];
  warnings: string[];
  failures: string[];
}

export type Phase = 'build' | 'distribute' | 'retire';

/** validate → build → distribute → retire (or only the phases given), re-reading the server before each phase. */
export async function run(o: FactoryOptions, inputs: StateInputs, phases: Phase[] = ['build', 'distribute', 'retire']): Promise<RunReport> {
  const startedAt = new Date().toISOString();
  const actions: ActionResult[] = [];
  let warnings: string[] = [];
  const state = () => readState(o, inputs);
  const errors: string[] = [];
  try {
    if (phases.includes('build')) {
      const s = await state();
      warnings = s.warnings;
      const planned = planBuild(s, o);
      const galleries = planned.filter((a) => a.kind === 'create-gallery');
      const builds = planned.filter((a) => a.kind === 'build' || a.kind === 'skip');
      const cleanup = planned.filter((a) => a.kind === 'cleanup');
      actions.push(...(await execute(o, s, [galleries, builds, cleanup])));
    }
    if (phases.includes('distribute')) {
      const s = await state();
      const planned = planDistribute(s);
      const of = (k: ActionKind) => planned.filter((a) => a.kind === k);
      // An enable waits only for a replication to its lab account's own region; the others go alongside.
      const home = (a: Action) => lc(s.plans.find((p) => p.label === a.lab)?.plan.location ?? '');
      const blocking = (a: Action) => of('replicate').find((r) => r.imagePath === a.imagePath && r.regions?.includes(home(a)));
      const enable = of('enable');
      const first = await execute(o, s, [of('attach'), [...of('replicate'), ...enable.filter((a) => !blocking(a))]]);
      actions.push(...first);
      // An image is not offered where its replication failed: it could not be used there.
      const failed = first.filter((a) => a.kind === 'replicate' && a.status === 'Failed');
      const waiting = enable.filter((a) => blocking(a));
      const stopped = (a: Action) => failed.find((r) => r.imagePath === a.imagePath && r.regions?.includes(home(a)));
      for (const a of waiting.filter(stopped))
        actions.push({ ...a, status: 'Failed', attempts: 0, error: `not enabled: the replication of ${a.image} ${a.version} to ${home(a)} failed` });
      actions.push(...(await execute(o, s, [waiting.filter((a) => !stopped(a))])));
      warnings = s.warnings;
    }
    if (phases.includes('retire')) {
      const s = await state();
      const planned = planRetire(s, o.imagesToSave);
      actions.push(...(await execute(o, s, [planned.filter((a) => a.kind === 'disable'), planned.filter((a) => a.kind !== 'disable')])));
    }
  } catch (err) {
    // Inputs refused before anything was done stop the run as they are; after work was done, the report keeps it.
    if (!actions.some((a) => a.status)) throw err;
    const message = err instanceof FactoryInputError ? err.problems.map(formatProblem).join('; ') : (err as Error).message;
    errors.push(`the run stopped: ${message}`);
    o.log(`the run stopped: ${message}`);
  }
  const failures = [...actions.filter((a) => a.status === 'Failed').map((a) => `${describeAction(a)}: ${a.error}`), ...errors];
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    result: failures.length ? 'Failed' : 'Succeeded',
    options: { maxConcurrentJobs: o.maxConcurrentJobs, retries: o.retries, imagesToSave: o.imagesToSave, force: !!o.force, factoryGroup: o.factoryGroup },
    actions,
    warnings: [...new Set(warnings)],
    failures,
  };
}

const gb = (n: number | undefined) => (n ? ` (${n} GB)` : '');
const mins = (s: number) => (s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`);

/** One line for an action, for plans, logs and reports. */
export function describeAction(a: Action): string {
  switch (a.kind) {
    case 'create-gallery':
      return `create gallery ${a.gallery}`;
    case 'build':
      return `build ${a.imagePath} as ${a.image} ${a.version} in ${a.regions?.join(', ')}${gb(a.sizeGB)}: ${a.reason}; ${a.estimateFrom === 'timeout' ? `up to ${mins(a.estimateSeconds ?? 0)} (its timeout)` : `about ${mins(a.estimateSeconds ?? 0)} (its last build)`}`;
    case 'skip':
      return `skip ${a.imagePath}: ${a.reason}`;
    case 'cleanup':
      return `delete build VM ${a.vm} (${a.imagePath})`;
    case 'attach':
      return `attach gallery ${a.gallery} to lab account ${a.lab}`;
    case 'replicate':
      return `replicate ${a.image} ${a.version} to ${a.regions?.join(', ')}${gb(a.sizeGB)} ${a.reason ?? ''}`.trimEnd();
    case 'enable':
      return `enable ${a.image} (${a.version}) in lab account ${a.lab}`;
    case 'disable':
      return `disable ${a.image} in lab account ${a.lab}: ${a.reason}`;
    case 'delete':
      return `delete ${a.image} ${a.version}${gb(a.sizeGB)}: ${a.reason}`;
    case 'keep':
      return `keep ${a.image} ${a.version}: ${a.reason}`;
  }
}
