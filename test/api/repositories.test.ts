// Repositories map rows to records and back: JSON columns (a version's target
// regions, storage profile and replication, an image definition's
// recommendations, a lab plan's profiles) come back as they were written, a
// change touches only what it names, and a person's change gets a new ETag.
// Against both stores.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/db/database.js';
import type { Principal } from '../../src/lib/principal.js';
import { GalleryRepository, galleryImageRowOf, galleryRowOf, toGallery, toGalleryImage } from '../../src/repositories/gallery.repository.js';
import {
  ImageVersionRepository,
  imageVersionRowOf,
  type TargetRegion,
  toImageVersion,
  type VersionStorage,
} from '../../src/repositories/image-version.repository.js';
import { LabPlanRepository, labPlanRowOf, toLabPlan } from '../../src/repositories/lab-plan.repository.js';
import { ResourceGroupRepository } from '../../src/repositories/resource-group.repository.js';
import { createPgDatabase, DIALECTS } from '../helpers/pg.js';

const BY: Principal = { tokenId: 'tok1', subject: 'admin@school.edu', role: 'admin' };

describe.each(DIALECTS)('repositories (%s)', (dialect) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let sub: string;

  beforeAll(async () => {
    if (dialect === 'postgres') {
      const pg = await createPgDatabase();
      store = await openStore({ kind: 'postgres', url: pg.url });
      cleanup = pg.drop;
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'labforge-repos-'));
      store = await openStore({ kind: 'sqlite', file: join(dir, 'repos.db') });
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    }
    const groups = new ResourceGroupRepository(store.db);
    sub = (await groups.insertSubscription({ id: randomUUID(), displayName: 'Default', state: 'Enabled', createdAt: new Date().toISOString() })).id;
    await groups.insert(store.db, BY, { subscriptionId: sub, name: 'Images', location: 'site-a', tags: { dept: 'it' } });
  });
  afterAll(async () => {
    await store?.close();
    await cleanup?.();
  });

  it("keeps a version's target regions, storage profile and replication, and an image's JSON properties", async () => {
    const galleries = new GalleryRepository(store.db);
    const gallery = await galleries.insertGallery(store.db, BY, {
      key: randomUUID(),
      subscriptionId: sub,
      resourceGroup: 'Images',
      name: 'Course',
      location: 'site-a',
      tags: {},
      description: null,
      uniqueName: 'x-COURSE',
    });
    expect(await galleries.galleryByName(store.db, sub.toUpperCase(), 'images', 'COURSE')).toEqual(gallery);
    const image = await galleries.insertImage(store.db, BY, gallery, {
      key: randomUUID(),
      name: 'Ubuntu',
      tags: { course: 'os101' },
      osType: 'Linux',
      osState: 'Generalized',
      hyperVGeneration: 'V2',
      architecture: 'x64',
      identifier: { publisher: 'School', offer: 'Labs', sku: 'Ubuntu24' },
      description: 'The course image',
      eula: null,
      privacyStatementUri: null,
      releaseNoteUri: null,
      endOfLifeDate: null,
      recommended: { vCPUs: { min: 2, max: 8 }, memory: { min: 2048 } },
      disallowed: { diskTypes: ['Standard_LRS'] },
      features: [{ name: 'SecurityType', value: 'TrustedLaunch' }],
      purchasePlan: { name: 'lab', publisher: 'School', product: 'Labs' },
    });
    expect(image).toMatchObject({ galleryName: 'Course', galleryKey: gallery.key, location: 'site-a', resourceGroup: 'Images' });
    expect(await galleries.imageByKey(image.key)).toEqual(image);
    expect(await galleries.imageNameWithIdentifier(store.db, gallery.key, { publisher: 'school', offer: 'LABS', sku: 'ubuntu24' })).toBe('Ubuntu');

    const versions = new ImageVersionRepository(store.db);
    const targetRegions: TargetRegion[] = [
      { name: 'site-a', regionalReplicaCount: 2, storageAccountType: 'Standard_ZRS' },
      { name: 'site-b', regionalReplicaCount: 1, storageAccountType: 'Premium_LRS' },
    ];
    const storage: VersionStorage = {
      osDisk: { sizeGB: 30, hostCaching: 'ReadWrite', source: { kind: 'upload', uri: 'https://lab/uploads/u1', uploadId: 'u1', format: 'qcow2' } },
      dataDisks: [{ sizeGB: 4, hostCaching: 'None', source: { kind: 'empty', uri: 'labforge:empty-disk?sizeGB=4' }, lun: 3 }],
    };
    const created = await versions.insert(store.db, BY, image, {
      key: randomUUID(),
      name: '1.10.2',
      tags: { build: '42' },
      provisioningState: 'Creating',
      excludeFromLatest: false,
      endOfLifeDate: null,
      replicaCount: 2,
      targetRegions,
      storage,
      replication: { 'site-a': { state: 'Replicating', progress: 0 }, 'site-b': { state: 'Replicating', progress: 0 } },
      publishedDate: new Date().toISOString(),
    });
    expect(created).toMatchObject({ galleryName: 'Course', imageName: 'Ubuntu', imageKey: image.key, targetRegions, storage });
    expect(await versions.byKey(created.key)).toEqual(created);
    expect(await versions.byName(store.db, image, '1.10.2')).toEqual(created);
    expect(await versions.latest(store.db, image)).toBeUndefined();

    // A change the server makes: only what it names, and the ETag stays.
    const replication = {
      'site-a': { state: 'Completed' as const, progress: 100, details: 'source region' },
      'site-b': { state: 'Failed' as const, progress: 40 },
    };
    await versions.update(store.db, created.key, { provisioningState: 'Succeeded', replication });
    const done = await versions.byKey(created.key);
    expect(done).toEqual({ ...created, provisioningState: 'Succeeded', replication });
    expect(await versions.latest(store.db, image)).toEqual(done);

    // A change by a person: a new ETag, and the record returned is the one stored.
    const changed = await versions.modify(store.db, done as NonNullable<typeof done>, BY, {
      excludeFromLatest: true,
      targetRegions: targetRegions.slice(0, 1),
    });
    expect(changed.etag).not.toBe(created.etag);
    expect(changed).toEqual(await versions.byKey(created.key));
    expect(changed).toMatchObject({ excludeFromLatest: true, targetRegions: targetRegions.slice(0, 1), storage, replication, tags: { build: '42' } });
    expect(await versions.latest(store.db, image)).toBeUndefined();
    expect(await versions.names(store.db, image.key, 5)).toEqual(['1.10.2']);
    expect((await versions.catalogue()).get(created.key)).toEqual({
      gallery: 'Course',
      image: 'Ubuntu',
      version: '1.10.2',
      targetRegions: targetRegions.slice(0, 1),
    });

    // Records turn back into the rows they came from.
    expect(toGallery(galleryRowOf(gallery))).toEqual(gallery);
    expect(toGalleryImage(galleryImageRowOf(image), image.galleryName)).toEqual(image);
    expect(toImageVersion(imageVersionRowOf(changed), changed.galleryName, changed.imageName)).toEqual(changed);
  });

  it("keeps a lab plan's profiles, regions and support information; a patch changes only what it names", async () => {
    const plans = new LabPlanRepository(store.db);
    const plan = await plans.insert(store.db, BY, {
      key: randomUUID(),
      subscriptionId: sub.toUpperCase(),
      resourceGroup: 'Images',
      name: 'Science',
      location: 'site-a',
      tags: {},
      allowedRegions: ['site-a', 'site-b'],
      defaultConnectionProfile: { webSshAccess: 'Public', webRdpAccess: 'None', clientSshAccess: 'Public', clientRdpAccess: 'Private' },
      defaultAutoShutdownProfile: {
        shutdownOnDisconnect: 'Enabled',
        shutdownWhenNotConnected: 'Disabled',
        shutdownOnIdle: 'LowUsage',
        disconnectDelay: 'PT15M',
        idleDelay: 'PT30M',
      },
      sharedGalleryId: null,
      supportInfo: { email: 'help@school.edu', phone: '+1 555 0100' },
      linkedLmsInstance: null,
    });
    expect(plan.subscriptionId).toBe(sub.toLowerCase());
    const read = await plans.byName(store.db, sub, 'IMAGES', 'science');
    expect(read).toEqual(plan);
    expect(read?.defaultAutoShutdownProfile).toEqual({
      shutdownOnDisconnect: 'Enabled',
      shutdownWhenNotConnected: 'Disabled',
      shutdownOnIdle: 'LowUsage',
      disconnectDelay: 'PT15M',
      idleDelay: 'PT30M',
    });

    const galleryId = `/subscriptions/${sub}/resourceGroups/Images/providers/Microsoft.Compute/galleries/Course`;
    const changed = await plans.modify(store.db, plan, BY, { sharedGalleryId: galleryId, supportInfo: null });
    expect(changed).toEqual(await plans.byName(store.db, sub, 'Images', 'Science'));
    expect(changed).toMatchObject({
      sharedGalleryId: galleryId,
      supportInfo: null,
      allowedRegions: ['site-a', 'site-b'],
      defaultConnectionProfile: plan.defaultConnectionProfile,
      defaultAutoShutdownProfile: plan.defaultAutoShutdownProfile,
    });
    expect(changed.etag).not.toBe(plan.etag);
    expect(toLabPlan(labPlanRowOf(changed))).toEqual(changed);

    const imageKey = randomUUID();
    await plans.setImageState(store.db, plan.key, imageKey, 'Enabled', BY, new Date().toISOString());
    await plans.setImageState(store.db, plan.key, imageKey, 'Disabled', BY, new Date().toISOString());
    expect(await plans.imageStates(plan.key)).toEqual(new Map([[imageKey, 'Disabled']]));
    await plans.delete(store.db, plan.key);
    expect(await plans.byName(store.db, sub, 'Images', 'Science')).toBeUndefined();
    expect((await plans.imageStates(plan.key)).size).toBe(0);
  });
});
