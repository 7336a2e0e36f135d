// Wires the services to one metadata store.
import { join } from 'node:path';
import type { ComputeDriver } from '../compute/compute-driver.js';
import { createComputeDriver } from '../compute/drivers.js';
import { VmDisks } from '../compute/vm-disks.js';
import type { Config } from '../config/config.js';
import type { Store } from '../db/database.js';
import type { ChunkStore } from '../imagestore/chunk-store.js';
import { openRegionStores } from '../imagestore/regions.js';
import { OperationStore } from '../operations/operation.store.js';
import type { OperationHandler } from '../operations/worker.js';
import { AccountRepository } from '../repositories/account.repository.js';
import { ConsoleTicketRepository } from '../repositories/console-ticket.repository.js';
import { GalleryRepository } from '../repositories/gallery.repository.js';
import { ImageVersionRepository } from '../repositories/image-version.repository.js';
import { LabRepository } from '../repositories/lab.repository.js';
import { LabPlanRepository } from '../repositories/lab-plan.repository.js';
import { ResourceGroupRepository } from '../repositories/resource-group.repository.js';
import { ScheduleRepository } from '../repositories/schedule.repository.js';
import { TokenRepository } from '../repositories/token.repository.js';
import { VmRepository } from '../repositories/vm.repository.js';
import { AccountService } from './account.service.js';
import { AutoShutdownService } from './autoshutdown.service.js';
import { CaptureService } from './capture.service.js';
import { RegionCatalog } from './common.js';
import { ConsoleTicketService } from './console-ticket.service.js';
import { GalleryService } from './gallery.service.js';
import { HostService } from './host.service.js';
import { ImageVersionService } from './image-version.service.js';
import { LabJobs } from './jobs/lab.jobs.js';
import { storeJobs } from './jobs/store.jobs.js';
import { VersionJobs } from './jobs/version.jobs.js';
import { vmJobs } from './jobs/vm.jobs.js';
import { LabService } from './lab.service.js';
import { LabExportService } from './lab-export.service.js';
import { LabPlanService } from './lab-plan.service.js';
import { LabUserService } from './lab-user.service.js';
import { LabVmService } from './lab-vm.service.js';
import { AccessPolicy } from './policy.js';
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
  /** The compute driver VMs run on. */
  driver: ComputeDriver;
  vms: VmService;
  consoleTickets: ConsoleTicketService;
  hosts: HostService;
  labPlans: LabPlanService;
  labs: LabService;
  labVms: LabVmService;
  labUsers: LabUserService;
  labExport: LabExportService;
  accounts: AccountService;
  schedules: ScheduleService;
  autoShutdown: AutoShutdownService;
  /** The long work operations run, by kind (the worker registers them). */
  jobs: OperationHandler<never>[];
}

/** Builds every service once, each given what it depends on (no service reaches back up). */
export function createServices(config: Config, store: Store): Services {
  const db = store.db;
  const regions = RegionCatalog.fromConfig(config);
  const operations = new OperationStore(db, store.dialect);
  const imageStores = openRegionStores(config.regions, { packBytes: config.images.packBytes });
  const driver = createComputeDriver(config.compute);
  const disks = new VmDisks(config.compute.dir, driver);
  // Repositories: the only code that queries these tables.
  const vmRecords = new VmRepository(db);
  const labRecords = new LabRepository(db);
  const consoleTicketRecords = new ConsoleTicketRepository(db);
  const groupRecords = new ResourceGroupRepository(db);
  const galleryRecords = new GalleryRepository(db);
  const versionRecords = new ImageVersionRepository(db);
  const labPlanRecords = new LabPlanRepository(db);
  const tokenRecords = new TokenRepository(db);
  const accountRecords = new AccountRepository(db);
  const scheduleRecords = new ScheduleRepository(db);

  const groups = new ResourceGroupService(db, groupRecords, galleryRecords, regions);
  const galleries = new GalleryService(db, galleryRecords, versionRecords, groups, regions);
  const uploads = new UploadService(config.dataDir);
  const capture = new CaptureService(vmRecords, disks, imageStores);
  const tmpDir = join(config.dataDir, 'tmp');
  const versions = new ImageVersionService(
    db,
    versionRecords,
    galleries,
    regions,
    operations,
    imageStores,
    uploads,
    { tmpDir },
    capture,
    vmRecords,
    labRecords,
  );
  const tokens = new TokenService(tokenRecords);
  const storeSettings = { pricePerGiBMonth: config.images.pricePerGiBMonth, gcGraceMs: config.images.gcGraceSeconds * 1000 };
  const imageStoreMaintenance = new StoreService(db, versionRecords, imageStores, operations, storeSettings);
  const policy = new AccessPolicy(labRecords);
  const vms = new VmService(db, vmRecords, groups, galleries, versions, regions, operations, imageStores, driver, disks, config.compute, policy);
  const consoleTickets = new ConsoleTicketService(consoleTicketRecords, driver, policy);
  const hosts = new HostService(vmRecords, driver);
  const labPlans = new LabPlanService(db, labPlanRecords, galleryRecords, versionRecords, labRecords, groups, regions);
  const labs = new LabService(db, labRecords, groups, labPlans, vms, regions, operations, imageStores, policy);
  const labVms = new LabVmService(labs, vms, policy);
  const labUsers = new LabUserService(labs, labRecords, vms);
  const labExport = new LabExportService(labs, labVms, labPlans, galleries, versions);
  const accounts = new AccountService(accountRecords, tokens, labUsers);
  const schedules = new ScheduleService(scheduleRecords, labs, vms);
  const autoShutdown = new AutoShutdownService(vmRecords, vms, driver);
  const labJobs = new LabJobs(labs, labRecords, labUsers, vms, capture, galleries, imageStores);
  const versionJobs = new VersionJobs(versions, versionRecords, capture, uploads, imageStores, { maxDiskBytes: config.images.maxDiskBytes, tmpDir });
  const jobs = [
    ...versionJobs.handlers(),
    ...storeJobs(imageStores, storeSettings, versionRecords),
    ...vmJobs(vms),
    ...labJobs.handlers(),
  ] as OperationHandler<never>[];
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
    driver,
    vms,
    consoleTickets,
    hosts,
    labPlans,
    labs,
    labVms,
    labUsers,
    labExport,
    accounts,
    schedules,
    autoShutdown,
    jobs,
  };
}
