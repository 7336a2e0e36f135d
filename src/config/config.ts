// Server configuration: embedded defaults, an optional YAML/JSON file checked
// against a schema, and environment variables that override both. Every
// environment variable the server uses is read and checked here (the table in
// docs/OPERATIONS.md lists them); lower layers get the values passed down.
import { existsSync, readFileSync } from 'node:fs';
import { isIP, isIPv4 } from 'node:net';
import { homedir, hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import YAML from 'yaml';

const RegionName = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' });

const ImageStoreSchema = Type.Object(
  {
    driver: Type.String({ minLength: 1 }),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

const RegionSchema = Type.Object(
  {
    name: RegionName,
    displayName: Type.Optional(Type.String()),
    imageStore: Type.Optional(ImageStoreSchema),
  },
  { additionalProperties: false },
);

const GeographySchema = Type.Object(
  {
    name: RegionName,
    displayName: Type.Optional(Type.String()),
    regions: Type.Array(RegionSchema, { minItems: 1 }),
  },
  { additionalProperties: false },
);

const VmSizeSchema = Type.Object(
  { vcpus: Type.Integer({ minimum: 1, maximum: 64 }), memoryMiB: Type.Integer({ minimum: 128, maximum: 1048576 }) },
  { additionalProperties: false },
);

const BuiltinImageSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,78}[A-Za-z0-9]$' }),
    file: Type.String({ minLength: 1 }),
    osType: Type.Optional(Type.Union([Type.Literal('Linux'), Type.Literal('Windows')])),
    osState: Type.Optional(Type.Union([Type.Literal('Generalized'), Type.Literal('Specialized')])),
    hyperVGeneration: Type.Optional(Type.Union([Type.Literal('V1'), Type.Literal('V2')])),
    description: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const ConfigFileSchema = Type.Object(
  {
    dataDir: Type.Optional(Type.String({ minLength: 1 })),
    listen: Type.Optional(Type.String({ pattern: '^(\\[[0-9a-fA-F:]+\\]|[^:\\s]+):[0-9]{1,5}$' })),
    publicUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
    tls: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean()),
          certFile: Type.Optional(Type.String()),
          keyFile: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    database: Type.Optional(Type.Object({ url: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false })),
    geographies: Type.Optional(Type.Array(GeographySchema, { minItems: 1 })),
    operations: Type.Optional(
      Type.Object(
        {
          leaseSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 3600 })),
          pollMilliseconds: Type.Optional(Type.Number({ minimum: 10, maximum: 60000 })),
          concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
        },
        { additionalProperties: false },
      ),
    ),
    api: Type.Optional(Type.Object({ defaultPageSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false })),
    compute: Type.Optional(
      Type.Object(
        {
          driver: Type.Optional(Type.String({ minLength: 1 })),
          accel: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('kvm'), Type.Literal('tcg')])),
          qemu: Type.Optional(Type.String({ minLength: 1 })),
          kvmDevice: Type.Optional(Type.String({ minLength: 1 })),
          accelCacheFile: Type.Optional(Type.String({ minLength: 1 })),
          probeKernel: Type.Optional(Type.String({ minLength: 1 })),
          probeInitrd: Type.Optional(Type.String({ minLength: 1 })),
          stopTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
          forwardAddress: Type.Optional(Type.String({ minLength: 1 })),
          connectHost: Type.Optional(Type.String({ minLength: 1 })),
          defaultSize: Type.Optional(Type.String({ minLength: 1 })),
          sizes: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,80}$' }), VmSizeSchema)),
          builtinImages: Type.Optional(Type.Array(BuiltinImageSchema)),
        },
        { additionalProperties: false },
      ),
    ),
    images: Type.Optional(
      Type.Object(
        {
          maxDiskSizeGB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
          pricePerGiBMonth: Type.Optional(Type.Number({ minimum: 0 })),
          gcGraceSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
          packSizeMiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ConfigFile = Static<typeof ConfigFileSchema>;

export interface RegionConfig {
  name: string;
  displayName: string;
  geography: string;
  geographyDisplayName: string;
  imageStore: { driver: string; options: Record<string, unknown> };
}

export interface Config {
  dataDir: string;
  listen: { host: string; port: number };
  publicUrl?: string;
  tls: { enabled: boolean; certFile?: string; keyFile?: string };
  database: { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };
  regions: RegionConfig[];
  operations: { leaseSeconds: number; pollMilliseconds: number; concurrency: number };
  api: { defaultPageSize: number };
  /** Largest disk (virtual size and upload size) accepted, in bytes; directIo: large image-store writes bypass the page cache where the filesystem allows. */
  images: { maxDiskBytes: number; pricePerGiBMonth: number; gcGraceSeconds: number; packBytes: number; directIo: boolean };
  compute: ComputeConfig;
  adminToken?: string;
  /** Delays for crash tests (LABFORGE_FAULT_INJECTION); empty in normal use. */
  faults: FaultInjection;
  /** Where the settings came from, for `labforge doctor` and the start banner. */
  source: string;
}

export interface VmSize {
  vcpus: number;
  memoryMiB: number;
}

export interface BuiltinImage {
  name: string;
  /** A raw disk file on this host, imported into the built-in gallery at start. */
  file: string;
  osType: 'Linux' | 'Windows';
  osState: 'Generalized' | 'Specialized';
  hyperVGeneration: 'V1' | 'V2';
  description: string;
}

export interface ComputeConfig {
  /** VM folders, overlays and materialised bases live here. */
  dir: string;
  /** The compute driver by name (qemu on this host). */
  driver: string;
  accel: 'auto' | 'kvm' | 'tcg';
  /** The QEMU system emulator (LABFORGE_QEMU; default qemu-system-x86_64 on the PATH). */
  qemu?: string;
  /** The KVM device the acceleration probe checks (LABFORGE_KVM_DEVICE; default /dev/kvm). */
  kvmDevice?: string;
  /** Where the per-host acceleration verdict is cached (LABFORGE_ACCEL_CACHE; default ~/.cache/labforge/acceleration.json). */
  accelCacheFile: string;
  /** The kernel and initramfs the acceleration probe boots (default: the test guest's, from scripts/build-test-guest.sh). */
  probeKernel: string;
  probeInitrd: string;
  stopTimeoutMs: number;
  /** The host address VMs' SSH/RDP ports are forwarded on: 127.0.0.1 (this machine only) or 0.0.0.0 (every interface). */
  forwardAddress: string;
  /** The host name people connect to for those ports, as shown in connection details. */
  connectHost: string;
  sizes: Record<string, VmSize>;
  defaultSize: string;
  builtinImages: BuiltinImage[];
}

/** VM sizes offered by default: Azure's names, with what each gets here. */
export const DEFAULT_VM_SIZES: Record<string, VmSize> = {
  Standard_B1s: { vcpus: 1, memoryMiB: 1024 },
  Standard_B1ms: { vcpus: 1, memoryMiB: 2048 },
  Standard_B2s: { vcpus: 2, memoryMiB: 4096 },
  Standard_D2s_v5: { vcpus: 2, memoryMiB: 8192 },
  Standard_D4s_v5: { vcpus: 4, memoryMiB: 16384 },
};

/** The root of the labforge installation (this file is in src/config or dist/config). */
export const INSTALL_ROOT = resolve(import.meta.dirname, '..', '..');

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Fault injection for crash tests: pauses at chosen points so a test can kill the server in the middle of work. */
export interface FaultInjection {
  /** Pause after every operation step. */
  stepDelayMs?: number;
  /** Pause after every chunk stored by an import or sent by a replication. */
  chunkDelayMs?: number;
}

/** An environment variable's value; an empty one counts as unset. */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

const OFF = /^(0|false|off|no|none)$/i;
const ON = /^(1|true|on|yes)$/i;

/** An on/off variable: 1, true, on, yes or 0, false, off, no (none too, where it reads naturally). */
function envSwitch(env: NodeJS.ProcessEnv, name: string, what: string): boolean | undefined {
  const v = envValue(env, name);
  if (v === undefined) return undefined;
  if (ON.test(v)) return true;
  if (OFF.test(v)) return false;
  throw new ConfigError(`${name} "${v}" is not valid: use 1 (or on, true, yes) to turn ${what} on, 0 (or off, false, no) to turn it off.`);
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share'), 'labforge');
}

/** The per-host cache of the acceleration verdict: ~/.cache/labforge/acceleration.json (or under XDG_CACHE_HOME). */
export function defaultAccelCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'labforge', 'acceleration.json');
}

/**
 * LABFORGE_FAULT_INJECTION (crash tests only): comma-separated `name=milliseconds`,
 * e.g. `step-delay-ms=1500,chunk-delay-ms=20`.
 */
export function parseFaultInjection(text: string | undefined): FaultInjection {
  const out: FaultInjection = {};
  for (const part of (text ?? '').split(',')) {
    if (part.trim() === '') continue;
    const [k, v, extra] = part.split('=').map((x) => x.trim());
    const n = Number(v);
    if ((k !== 'step-delay-ms' && k !== 'chunk-delay-ms') || extra !== undefined || !v || !Number.isFinite(n) || n < 0) {
      throw new ConfigError(
        `LABFORGE_FAULT_INJECTION "${text}" is not valid at "${part}": give comma-separated name=milliseconds pairs with the names step-delay-ms and chunk-delay-ms, for example step-delay-ms=1500 (crash tests only; unset in normal use).`,
      );
    }
    if (k === 'step-delay-ms') out.stepDelayMs = n;
    else out.chunkDelayMs = n;
  }
  return out;
}

function parseListen(value: string, from: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):([0-9]{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new ConfigError(`${from}: listen address "${value}" is not of the form address:port (for example 127.0.0.1:8443 or [::1]:8443).`);
  }
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

function describeErrors(file: string, doc: unknown): string {
  const lines = [...Value.Errors(ConfigFileSchema, doc)].slice(0, 10).map((e) => {
    const where = e.instancePath || '/';
    return `  at ${where}: ${e.message}`;
  });
  return `configuration file ${file} is not valid:\n${lines.join('\n')}\nSee docs/OPERATIONS.md for every setting and its default.`;
}

export function parseConfigText(text: string, file: string): ConfigFile {
  let doc: unknown;
  try {
    doc = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text, { prettyErrors: true });
  } catch (err) {
    throw new ConfigError(`configuration file ${file} cannot be read as ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!Value.Check(ConfigFileSchema, doc)) throw new ConfigError(describeErrors(file, doc));
  return doc as ConfigFile;
}

function defaultGeographies(dataDir: string): NonNullable<ConfigFile['geographies']> {
  return [
    {
      name: 'local',
      displayName: 'Local',
      regions: ['site-a', 'site-b'].map((name) => ({
        name,
        displayName: name === 'site-a' ? 'Site A' : 'Site B',
        imageStore: { driver: 'local', options: { path: join(dataDir, 'regions', name) } },
      })),
    },
  ];
}

/**
 * Builds the effective configuration. Order of precedence: environment
 * variables, then the config file (`--config`, `LABFORGE_CONFIG`, or
 * `<dataDir>/labforge.yaml` when present), then embedded defaults.
 */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): Config {
  const env = opts.env ?? process.env;
  const explicit = opts.file ?? envValue(env, 'LABFORGE_CONFIG');
  let file: ConfigFile = {};
  let source = 'embedded defaults';
  const envDataDir = envValue(env, 'LABFORGE_DATA_DIR');
  const candidate = explicit ?? join(envDataDir ? resolve(envDataDir) : defaultDataDir(env), 'labforge.yaml');
  if (explicit && !existsSync(explicit)) {
    throw new ConfigError(`configuration file ${explicit} does not exist. Create it or drop --config / LABFORGE_CONFIG to use the embedded defaults.`);
  }
  if (existsSync(candidate)) {
    file = parseConfigText(readFileSync(candidate, 'utf8'), candidate);
    source = `file ${resolve(candidate)}`;
  }
  const dataDir = resolve(envDataDir ?? file.dataDir ?? defaultDataDir(env));
  const envListen = envValue(env, 'LABFORGE_LISTEN');
  const listen = parseListen(envListen ?? file.listen ?? '127.0.0.1:8443', envListen ? 'LABFORGE_LISTEN' : 'listen');
  const publicUrl = publicUrlValue(envValue(env, 'LABFORGE_PUBLIC_URL')) ?? file.publicUrl;

  const dbUrl = envValue(env, 'LABFORGE_DATABASE_URL') ?? file.database?.url;
  let database: Config['database'];
  if (!dbUrl) database = { kind: 'sqlite', file: join(dataDir, 'labforge.db') };
  else if (/^postgres(ql)?:\/\//.test(dbUrl)) database = { kind: 'postgres', url: dbUrl };
  else if (dbUrl.startsWith('sqlite:')) database = { kind: 'sqlite', file: resolve(dataDir, dbUrl.slice('sqlite:'.length)) };
  else {
    throw new ConfigError(
      `database URL "${dbUrl.replace(/\/\/[^@]*@/, '//***@')}" is not supported: use postgres://user:password@host:port/database for PostgreSQL, or sqlite:FILE (default: the SQLite file in the data directory).`,
    );
  }

  const tls = {
    enabled: envSwitch(env, 'LABFORGE_TLS', 'HTTPS') ?? file.tls?.enabled ?? true,
    certFile: file.tls?.certFile,
    keyFile: file.tls?.keyFile,
  };
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
    throw new ConfigError('tls: give both certFile and keyFile, or neither to let labforge create its own certificate authority.');
  }

  const regions: RegionConfig[] = [];
  for (const geo of file.geographies ?? defaultGeographies(dataDir)) {
    for (const r of geo.regions) {
      if (regions.some((x) => x.name === r.name)) throw new ConfigError(`region "${r.name}" is configured twice; region names must be unique.`);
      const options = { ...(r.imageStore?.options ?? {}) };
      if ((r.imageStore?.driver ?? 'local') === 'local' && typeof options.path !== 'string') {
        options.path = join(dataDir, 'regions', r.name);
      }
      if (typeof options.path === 'string') options.path = resolve(dataDir, options.path);
      regions.push({
        name: r.name,
        displayName: r.displayName ?? r.name,
        geography: geo.name,
        geographyDisplayName: geo.displayName ?? geo.name,
        imageStore: { driver: r.imageStore?.driver ?? 'local', options },
      });
    }
  }

  return {
    dataDir,
    listen,
    publicUrl,
    tls,
    database,
    regions,
    operations: {
      leaseSeconds: leaseSeconds(envValue(env, 'LABFORGE_LEASE_SECONDS')) ?? file.operations?.leaseSeconds ?? 30,
      pollMilliseconds: file.operations?.pollMilliseconds ?? 500,
      concurrency: file.operations?.concurrency ?? 4,
    },
    api: { defaultPageSize: file.api?.defaultPageSize ?? 100 },
    images: {
      maxDiskBytes: (file.images?.maxDiskSizeGB ?? 2048) * 2 ** 30,
      pricePerGiBMonth: file.images?.pricePerGiBMonth ?? 0.05,
      gcGraceSeconds: file.images?.gcGraceSeconds ?? 3600,
      packBytes: packSizeMiB(envValue(env, 'LABFORGE_PACK_SIZE_MIB'), file.images?.packSizeMiB) * 2 ** 20,
      directIo: envSwitch(env, 'LABFORGE_DIRECT_IO', 'direct I/O') ?? true,
    },
    compute: computeConfig(file, dataDir, env, publicUrl),
    adminToken: envValue(env, 'LABFORGE_ADMIN_TOKEN'),
    faults: parseFaultInjection(envValue(env, 'LABFORGE_FAULT_INJECTION')),
    source,
  };
}

/** Chunks per pack file, in MiB of chunks (LABFORGE_PACK_SIZE_MIB or images.packSizeMiB; 32 by default). */
function packSizeMiB(envText: string | undefined, fromFile: number | undefined): number {
  if (envText === undefined) return fromFile ?? 32;
  const n = Number(envText);
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new ConfigError(`LABFORGE_PACK_SIZE_MIB "${envText}" is not valid: give a whole number of MiB from 1 to 1024 (32 by default).`);
  }
  return n;
}

/** Seconds an operation's lease lasts (LABFORGE_LEASE_SECONDS or operations.leaseSeconds; 30 by default). */
function leaseSeconds(envText: string | undefined): number | undefined {
  if (envText === undefined) return undefined;
  const n = Number(envText);
  if (!Number.isFinite(n) || n < 1 || n > 3600) {
    throw new ConfigError(`LABFORGE_LEASE_SECONDS "${envText}" is not valid: give a number of seconds from 1 to 3600 (30 by default).`);
  }
  return n;
}

/** The public URL from LABFORGE_PUBLIC_URL: an http(s) address (the file's publicUrl is checked by its schema). */
function publicUrlValue(envText: string | undefined): string | undefined {
  if (envText === undefined) return undefined;
  let ok = false;
  try {
    ok = /^https?:$/.test(new URL(envText).protocol);
  } catch {}
  if (!ok) {
    throw new ConfigError(
      `LABFORGE_PUBLIC_URL "${envText}" is not valid: give the http(s) address people reach labforge at, for example https://labs.school.example:8443.`,
    );
  }
  return envText;
}

const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;

/** A path setting resolved against the data folder; a bare command name (no slash) is kept for a PATH lookup. */
function optionalPath<K extends string>(key: K, value: string | undefined, dataDir: string): Partial<Record<K, string>> {
  if (value === undefined || value === '') return {};
  return { [key]: value.includes('/') ? resolve(dataDir, value) : value } as Partial<Record<K, string>>;
}

function computeConfig(file: ConfigFile, dataDir: string, env: NodeJS.ProcessEnv, publicUrl: string | undefined): ComputeConfig {
  const c = file.compute ?? {};
  const sizes = c.sizes ?? DEFAULT_VM_SIZES;
  const defaultSize = c.defaultSize ?? (sizes.Standard_B1s ? 'Standard_B1s' : (Object.keys(sizes)[0] ?? ''));
  if (!sizes[defaultSize]) {
    throw new ConfigError(`compute.defaultSize "${defaultSize}" is not one of compute.sizes (${Object.keys(sizes).join(', ') || 'none'}).`);
  }
  const accelEnv = envValue(env, 'LABFORGE_ACCEL');
  if (accelEnv !== undefined && !['auto', 'kvm', 'tcg'].includes(accelEnv)) {
    throw new ConfigError(`LABFORGE_ACCEL "${accelEnv}" is not valid: use auto (KVM when it works), kvm or tcg (software emulation).`);
  }
  const forwardAddress = envValue(env, 'LABFORGE_FORWARD_ADDRESS') ?? c.forwardAddress ?? '127.0.0.1';
  if (!isIPv4(forwardAddress)) {
    throw new ConfigError(
      `compute.forwardAddress (LABFORGE_FORWARD_ADDRESS) "${forwardAddress}" is not an IPv4 address: use 127.0.0.1 to reach VMs from this machine only, 0.0.0.0 for every network interface, or one interface's address.`,
    );
  }
  // What people type to reach a forwarded port: the configured name, else the address itself, else (every
  // interface) the host of the public URL or this machine's name.
  const wildcard = forwardAddress === '0.0.0.0';
  const namedHost = envValue(env, 'LABFORGE_CONNECT_HOST') ?? c.connectHost;
  if (namedHost !== undefined && !HOST_NAME.test(namedHost) && !isIP(namedHost.replace(/^\[|\]$/g, ''))) {
    throw new ConfigError(
      `compute.connectHost (LABFORGE_CONNECT_HOST) "${namedHost}" is not a host name or IP address: give the name people connect to for VMs' SSH/RDP ports, for example vm.school.example, without a scheme or port.`,
    );
  }
  const connectHost = namedHost ?? (wildcard ? (publicUrl ? new URL(publicUrl).hostname : hostname()) : forwardAddress);
  // The test guest that `scripts/setup.sh` builds is the built-in image of a fresh install.
  const builtinOff = envSwitch(env, 'LABFORGE_BUILTIN_IMAGES', 'the built-in images') === false;
  const builtin = builtinOff
    ? []
    : (c.builtinImages ?? [
        {
          name: 'labforge-test-guest',
          file: join(INSTALL_ROOT, '.labforge-data', 'test-guest', 'guest.raw'),
          description: 'A small Linux guest (busybox) that applies cloud-init NoCloud seeds; built by scripts/build-test-guest.sh.',
        },
      ]);
  return {
    dir: join(dataDir, 'compute'),
    driver: envValue(env, 'LABFORGE_COMPUTE_DRIVER') ?? c.driver ?? 'qemu',
    accel: (accelEnv as ComputeConfig['accel'] | undefined) ?? c.accel ?? 'auto',
    ...optionalPath('qemu', envValue(env, 'LABFORGE_QEMU') ?? c.qemu, dataDir),
    ...optionalPath('kvmDevice', envValue(env, 'LABFORGE_KVM_DEVICE') ?? c.kvmDevice, dataDir),
    accelCacheFile:
      optionalPath('accelCacheFile', envValue(env, 'LABFORGE_ACCEL_CACHE') ?? c.accelCacheFile, dataDir).accelCacheFile ?? defaultAccelCacheFile(env),
    probeKernel: resolve(dataDir, c.probeKernel ?? join(INSTALL_ROOT, '.labforge-data', 'test-guest', 'probe-vmlinuz')),
    probeInitrd: resolve(dataDir, c.probeInitrd ?? join(INSTALL_ROOT, '.labforge-data', 'test-guest', 'probe-initrd.img')),
    stopTimeoutMs: (c.stopTimeoutSeconds ?? 60) * 1000,
    forwardAddress,
    connectHost,
    sizes,
    defaultSize,
    builtinImages: builtin.map((b) => ({
      name: b.name,
      file: resolve(dataDir, b.file),
      osType: b.osType ?? 'Linux',
      osState: b.osState ?? 'Generalized',
      hyperVGeneration: b.hyperVGeneration ?? 'V1',
      description: b.description ?? '',
    })),
  };
}
