// Wires the services to one metadata store.
import { join } from 'node:path';
import { createComputeDriver } from '../compute/drivers.js';
import type { Config } from '../config/config.js';
import type { Store } from '../db/database.js';
import type { ChunkStore } from '../imagestore/chunk-store.js';
import { openRegionStores } from '../imagestore/regions.js';
import { OperationStore } from '../operations/operation.store.js';
import { AccountService } from './account.service.js';
import { AutoShutdownService } from './autoshutdown.service.js';
import { RegionCatalog } from './common.js';
import { GalleryService } from './gallery.service.js';
import { HostService } from './host.service.js';
import { ImageVersionService } from './image-version.service.js';
import { LabService } from './lab.service.js';
import { LabPlanService } from './lab-plan.service.js';
import { ResourceGroupService } from './resource-group.service.js';
import { ScheduleService } from './schedule.service.js';
import { StoreService } from './store.service.js';
import { TokenService } from './token.service.js';
import { UploadService } from './upload.service.js';
import { VmService } from './vm.service.js';

export interface Services {
  config: Config;
  store: Store;
  regions: RegionCatalog;
  groups: ResourceGroupService;
  galleries: GalleryService;
  versions: ImageVersionService;
  tokens: TokenService;
  operations: OperationStore;
  /** The image store of each region, by region name. */
  imageStores: Map<string, ChunkStore>;
  uploads: UploadService;
  imageStoreMaintenance: StoreService;
  vms: VmService;
  hosts: HostService;
  labPlans: LabPlanService;
  labs: LabService;
  accounts: AccountService;
  schedules: ScheduleService;
  autoShutdown: AutoShutdownService;
}

export function createServices(config: Config, store: Store): Services {
  const regions = RegionCatalog.fromConfig(config);
  const operations = new OperationStore(store.db, store.dialect);
  const groups = new ResourceGroupService(store.db, regions);
  const galleries = new GalleryService(store.db, groups, regions);
  const imageStores = openRegionStores(config.regions, { packBytes: config.images.packBytes });
  const uploads = new UploadService(config.dataDir);
  const versions = new ImageVersionService(store.db, galleries, regions, operations, imageStores, uploads, {
    maxDiskBytes: config.images.maxDiskBytes,
    tmpDir: join(config.dataDir, 'tmp'),
  });
  const tokens = new TokenService(store.db);
  const imageStoreMaintenance = new StoreService(store.db, imageStores, operations, {
    pricePerGiBMonth: config.images.pricePerGiBMonth,
    gcGraceMs: config.images.gcGraceSeconds * 1000,
  });
  const driver = createComputeDriver(config.compute);
  const vms = new VmService(store.db, groups, galleries, versions, regions, operations, imageStores, driver, {
    ...config.compute,
    tmpDir: join(config.dataDir, 'tmp'),
  });
  versions.capturer = vms;
  const hosts = new HostService(store.db, driver);
  const labPlans = new LabPlanService(store.db, groups, versions, regions);
  const labs = new LabService(store.db, groups, galleries, versions, labPlans, vms, regions, operations, imageStores);
  const accounts = new AccountService(store.db, tokens);
  accounts.labs = labs;
  const schedules = new ScheduleService(store.db, labs, vms);
  const autoShutdown = new AutoShutdownService(store.db, vms);
  return {
    config,
    store,
    regions,
    groups,
    galleries,
    versions,
    tokens,
    operations,
    imageStores,
    uploads,
    imageStoreMaintenance,
    vms,
    hosts,
    labPlans,
    labs,
    accounts,
    schedules,
    autoShutdown,
  };
}
