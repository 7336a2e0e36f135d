// Built-in images: disk files that come with the installation (the test
// guest that setup builds) are published at start into the gallery `builtin`
// of resource group `labforge-builtin`, replicated to every region. A new
// version is made only when the file changed since the last one.
import { stat } from 'node:fs/promises';
import type { BuiltinImage } from '../config/config.js';
import { LabforgeError } from '../errors.js';
import { type RegionCatalog, SYSTEM } from './common.js';
import type { GalleryService } from './gallery.service.js';
import type { ImageVersionService } from './image-version.service.js';
import type { ResourceGroupService } from './resource-group.service.js';

export const BUILTIN_GROUP = 'labforge-builtin';
export const BUILTIN_GALLERY = 'builtin';
const SOURCE_TAG = 'labforge.source';

export interface BuiltinResult {
  name: string;
  /** registered: a new version was queued; current: nothing changed; missing: the file is not there. */
  outcome: 'registered' | 'current' | 'missing';
  version?: string;
  file: string;
}

/** What publishing the built-in images needs. */
export interface BuiltinImageDeps {
  images: BuiltinImage[];
  regions: RegionCatalog;
  groups: ResourceGroupService;
  galleries: GalleryService;
  versions: ImageVersionService;
}

export async function registerBuiltinImages(s: BuiltinImageDeps): Promise<BuiltinResult[]> {
  const images = s.images;
  if (images.length === 0) return [];
  const sub = (await s.groups.listSubscriptions())[0]?.id;
  if (!sub) return [];
  const home = s.regions.regions[0]?.name as string;
  const out: BuiltinResult[] = [];
  for (const b of images) {
    let fingerprint: string;
    try {
      const st = await stat(b.file);
      fingerprint = `${st.size}:${Math.floor(st.mtimeMs)}`;
    } catch {
      out.push({ name: b.name, outcome: 'missing', file: b.file });
      continue;
    }
    await ensureDefinition(s, sub, home, b);
    const versions = await s.versions.list(sub, BUILTIN_GROUP, BUILTIN_GALLERY, b.name, undefined, 1000);
    const same = versions.find((v) => v.tags[SOURCE_TAG] === fingerprint && v.provisioningState !== 'Failed');
    if (same) {
      out.push({ name: b.name, outcome: 'current', version: same.name, file: b.file });
      continue;
    }
    const patch = versions.reduce((n, v) => Math.max(n, Number(v.name.split('.')[2] ?? 0) + 1), 0);
    const name = `1.0.${patch}`;
    await s.versions.createOrUpdate(
      SYSTEM,
      sub,
      BUILTIN_GROUP,
      BUILTIN_GALLERY,
      b.name,
      name,
      { tags: { [SOURCE_TAG]: fingerprint }, publishingProfile: { targetRegions: s.regions.regions.map((r) => ({ name: r.name })) } },
      'put',
      undefined,
      { osDisk: { sizeGB: 0, hostCaching: 'ReadWrite', source: { kind: 'file', path: b.file } }, dataDisks: [] },
    );
    out.push({ name: b.name, outcome: 'registered', version: name, file: b.file });
  }
  return out;
}

async function ensureDefinition(s: BuiltinImageDeps, sub: string, home: string, b: BuiltinImage): Promise<void> {
  try {
    await s.groups.get(sub, BUILTIN_GROUP);
  } catch (err) {
    if (!(err instanceof LabforgeError) || err.status !== 404) throw err;
    await s.groups.createOrUpdate(SYSTEM, sub, BUILTIN_GROUP, { location: home });
  }
  try {
    await s.galleries.getGallery(sub, BUILTIN_GROUP, BUILTIN_GALLERY);
  } catch (err) {
    if (!(err instanceof LabforgeError) || err.status !== 404) throw err;
    await s.galleries.createOrUpdateGallery(
      SYSTEM,
      sub,
      BUILTIN_GROUP,
      BUILTIN_GALLERY,
      { location: home, description: 'Images that come with labforge.' },
      'put',
    );
  }
  try {
    await s.galleries.getImage(sub, BUILTIN_GROUP, BUILTIN_GALLERY, b.name);
  } catch (err) {
    if (!(err instanceof LabforgeError) || err.status !== 404) throw err;
    await s.galleries.createOrUpdateImage(
      SYSTEM,
      sub,
      BUILTIN_GROUP,
      BUILTIN_GALLERY,
      b.name,
      {
        location: home,
        osType: b.osType,
        osState: b.osState,
        hyperVGeneration: b.hyperVGeneration,
        identifier: { publisher: 'labforge', offer: b.name, sku: '1' },
        description: b.description || null,
      },
      'put',
    );
  }
}
