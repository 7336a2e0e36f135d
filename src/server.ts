// Starts labforge: config → metadata store → operation workers → HTTPS API.
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type App, buildApp } from './api/app.js';
import type { Acceleration } from './compute/compute-driver.js';
import { type Config, ConfigError } from './config/config.js';
import { openStore, type Store } from './db/database.js';
import { setFaults } from './faults.js';
import { setDirectIo } from './imagestore/direct-io.js';
import { sharedHashPool } from './imagestore/hash-pool.js';
import { OperationWorker } from './operations/worker.js';
import { type BuiltinResult, registerBuiltinImages } from './services/builtin-images.js';
import { SYSTEM } from './services/common.js';
import { createServices, type Services } from './services/index.js';
import { TokenService } from './services/token.service.js';
import { ensureTls } from './tls/certs.js';

export interface RunningServer {
  app: App;
  services: Services;
  worker: OperationWorker;
  url: string;
  caFile?: string;
  /** Set on the first start of a new store: the admin token, shown once. */
  firstAdminToken?: string;
  /** What happened to the built-in images at this start. */
  builtinImages: BuiltinResult[];
  /** How VMs are accelerated on this host, and why. */
  acceleration: Acceleration;
  /** VMs found again at start (they keep running while the server is down). */
  vmsFound: { running: number; stopped: number; changed: string[] };
  close(): Promise<void>;
}

/** Creates the default subscription and, on a new store, the first admin token. */
export async function bootstrap(services: Services, presetAdminToken?: string): Promise<string | undefined> {
  await services.groups.ensureDefaultSubscription();
  if ((await services.tokens.count()) > 0) return undefined;
  const { token } = await services.tokens.create(SYSTEM, { name: 'initial-admin', subject: 'admin', role: 'admin' }, presetAdminToken);
  return token;
}

export function createWorker(services: Services): OperationWorker {
  const worker = new OperationWorker(services.store.db, services.operations, {
    ...services.config.operations,
    stepDelayMs: services.config.faults.stepDelayMs,
  });
  for (const h of services.jobs) worker.register(h);
  return worker;
}

export async function startServer(config: Config, opts: { logger?: boolean } = {}): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // Process-wide switches of the lower layers, from the configuration (crash-test delays; direct I/O, on unless turned off).
  setFaults(config.faults);
  setDirectIo(config.images.directIo);
  let store: Store | undefined;
  try {
    store = await openStore(config.database);
    const services = createServices(config, store);
    if (config.adminToken !== undefined && !TokenService.isWellFormed(config.adminToken)) {
      throw new Error(
        'LABFORGE_ADMIN_TOKEN is not a labforge token (lfg_<12 letters or digits>_<43 base64url characters>). Generate one with `labforge token generate`.',
      );
    }
    const firstAdminToken = await bootstrap(services, config.adminToken);
    // Leftovers of work a crash interrupted: temporary files are never finished content.
    await rm(join(config.dataDir, 'tmp'), { recursive: true, force: true });
    for (const regionStore of services.imageStores.values()) await regionStore.driver.cleanupTemporary(0);
    // The hashing threads start now rather than in the first import or capture.
    sharedHashPool();
    // VMs outlive the server: find them again before anything acts on them.
    const vmsFound = await services.vms.reconcile();
    // Nothing is being created yet: files of VMs without a record are what a crash left, and go.
    await services.vms.removeOrphans(0);
    // Proven once per host (and cached); with compute.accel kvm, a host where KVM fails is a start-up error, not failing VMs.
    const acceleration = await services.vms.driver.acceleration();
    if (config.compute.accel === 'kvm' && acceleration.kvm !== 'works') {
      throw new ConfigError(
        `compute.accel is kvm, but KVM does not run guests on this host: ${acceleration.reason} Fix KVM (then run labforge doctor --recheck), or set compute.accel to auto (KVM where it works, software emulation otherwise).`,
      );
    }
    const builtinImages = await registerBuiltinImages({ ...services, images: config.compute.builtinImages });
    const tls = config.tls.enabled ? ensureTls(config.dataDir, config.tls, config.listen.host) : undefined;
    const app = await buildApp(services, { https: tls, logger: opts.logger ? { level: 'info' } : false });
    await app.listen({ host: config.listen.host, port: config.listen.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
    const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host;
    const url = config.publicUrl ?? `${tls ? 'https' : 'http'}://${host}:${port}`;
    const worker = createWorker(services);
    worker.start();
    services.schedules.start();
    services.autoShutdown.start();
    const s = store;
    return {
      app,
      services,
      worker,
      url,
      caFile: tls?.caFile,
      firstAdminToken,
      builtinImages,
      acceleration,
      vmsFound,
      close: async () => {
        await services.schedules.stop();
        await services.autoShutdown.stop();
        await worker.stop();
        await app.close();
        await s.close();
      },
    };
  } catch (err) {
    await store?.close();
    throw err;
  }
}
