// Configuration: embedded defaults, the file and its schema errors, and the
// environment variables that override it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createComputeDriver } from '../../src/compute/drivers.js';
import { fakeDriver } from '../../src/compute/fake/fake.driver.js';
import { QemuDriver } from '../../src/compute/qemu/qemu.driver.js';
import { ConfigError, loadConfig, parseFaultInjection } from '../../src/config/config.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'labforge-cfg-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('configuration', () => {
  it('needs no file: SQLite in the data directory, TLS on, two regions in one geography', () => {
    const dir = tempDir();
    const c = loadConfig({ env: { LABFORGE_DATA_DIR: dir } });
    expect(c.source).toBe('embedded defaults');
    expect(c.database).toEqual({ kind: 'sqlite', file: join(dir, 'labforge.db') });
    expect(c.tls.enabled).toBe(true);
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(c.regions.map((r) => [r.name, r.geography, r.imageStore.options.path])).toEqual([
      ['site-a', 'local', join(dir, 'regions', 'site-a')],
      ['site-b', 'local', join(dir, 'regions', 'site-b')],
    ]);
  });

  it('reads <dataDir>/labforge.yaml and lets environment variables win', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'labforge.yaml'), 'listen: 0.0.0.0:9000\ntls:\n  enabled: false\ndatabase:\n  url: postgres://u:p@db.example:5432/lab\n');
    const fromFile = loadConfig({ env: { LABFORGE_DATA_DIR: dir } });
    expect(fromFile.listen).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(fromFile.tls.enabled).toBe(false);
    expect(fromFile.database).toEqual({ kind: 'postgres', url: 'postgres://u:p@db.example:5432/lab' });
    const overridden = loadConfig({ env: { LABFORGE_DATA_DIR: dir, LABFORGE_LISTEN: '[::1]:7000', LABFORGE_DATABASE_URL: 'sqlite:other.db' } });
    expect(overridden.listen).toEqual({ host: '::1', port: 7000 });
    expect(overridden.database).toEqual({ kind: 'sqlite', file: join(dir, 'other.db') });
  });

  it('explains schema errors with the path of the bad setting', () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'geographies:\n  - name: campus\n    regions:\n      - name: North Wing\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(ConfigError);
    try {
      loadConfig({ file, env: {} });
    } catch (err) {
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toContain('/geographies/0/regions/0/name');
    }
    writeFileSync(file, 'listen: [1, 2\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/cannot be read as YAML/);
    writeFileSync(file, 'colour: blue\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/must not have additional properties|additional/i);
  });

  it('refuses unknown database URLs, bad listen addresses, half TLS settings and duplicate regions', () => {
    const dir = tempDir();
    expect(() => loadConfig({ env: { LABFORGE_DATA_DIR: dir, LABFORGE_DATABASE_URL: 'mysql://x' } })).toThrow(/postgres:\/\//);
    expect(() => loadConfig({ env: { LABFORGE_DATA_DIR: dir, LABFORGE_LISTEN: 'localhost' } })).toThrow(/address:port/);
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'tls:\n  certFile: /x.pem\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/both certFile and keyFile/);
    writeFileSync(file, 'geographies:\n  - name: a\n    regions: [{ name: r1 }]\n  - name: b\n    regions: [{ name: r1 }]\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/configured twice/);
    expect(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} })).toThrow(/does not exist/);
  });

  it('forwards VM ports on loopback by default, on every interface when asked, and names the host people connect to', () => {
    const dir = tempDir();
    const local = loadConfig({ env: { LABFORGE_DATA_DIR: dir } }).compute;
    expect([local.forwardAddress, local.connectHost]).toEqual(['127.0.0.1', '127.0.0.1']);
    const open = loadConfig({ env: { LABFORGE_DATA_DIR: dir, LABFORGE_FORWARD_ADDRESS: '0.0.0.0', LABFORGE_PUBLIC_URL: 'https://labs.school.example:8443' } });
    expect([open.compute.forwardAddress, open.compute.connectHost]).toEqual(['0.0.0.0', 'labs.school.example']);
    const named = loadConfig({ env: { LABFORGE_DATA_DIR: dir, LABFORGE_FORWARD_ADDRESS: '0.0.0.0', LABFORGE_CONNECT_HOST: 'vm.school.example' } });
    expect(named.compute.connectHost).toBe('vm.school.example');
    expect(() => loadConfig({ env: { LABFORGE_DATA_DIR: dir, LABFORGE_FORWARD_ADDRESS: 'everywhere' } })).toThrow(
      /"everywhere" is not an IPv4 address: use 127\.0\.0\.1 .* 0\.0\.0\.0 for every network interface/,
    );
  });

  it('checks every environment variable, naming it, saying what is wrong and what to use', () => {
    const dir = tempDir();
    const load = (env: Record<string, string>) => loadConfig({ env: { LABFORGE_DATA_DIR: dir, ...env } });
    const refused: [Record<string, string>, RegExp][] = [
      [{ LABFORGE_LEASE_SECONDS: 'soon' }, /LABFORGE_LEASE_SECONDS "soon" is not valid: give a number of seconds from 1 to 3600/],
      [{ LABFORGE_LEASE_SECONDS: '0' }, /LABFORGE_LEASE_SECONDS "0" is not valid/],
      [{ LABFORGE_LEASE_SECONDS: '7200' }, /LABFORGE_LEASE_SECONDS "7200" is not valid/],
      [{ LABFORGE_TLS: 'maybe' }, /LABFORGE_TLS "maybe" is not valid: use 1 \(or on, true, yes\) .* 0 \(or off, false, no\)/],
      [{ LABFORGE_BUILTIN_IMAGES: 'some' }, /LABFORGE_BUILTIN_IMAGES "some" is not valid: use 1 .* to turn the built-in images on/],
      [{ LABFORGE_DIRECT_IO: 'fast' }, /LABFORGE_DIRECT_IO "fast" is not valid/],
      [{ LABFORGE_PUBLIC_URL: 'labs.school.example' }, /LABFORGE_PUBLIC_URL "labs.school.example" is not valid: give the http\(s\) address/],
      [{ LABFORGE_PUBLIC_URL: 'ftp://labs.school.example' }, /LABFORGE_PUBLIC_URL "ftp:\/\/labs.school.example" is not valid/],
      [
        { LABFORGE_CONNECT_HOST: 'https://vm.school.example' },
        /LABFORGE_CONNECT_HOST\) "https:\/\/vm.school.example" is not a host name or IP address: .* without a scheme or port/,
      ],
      [{ LABFORGE_CONNECT_HOST: 'vm.school.example:22' }, /is not a host name or IP address/],
      [
        { LABFORGE_FAULT_INJECTION: 'step-delay=5' },
        /LABFORGE_FAULT_INJECTION "step-delay=5" is not valid at "step-delay=5": give comma-separated name=milliseconds pairs/,
      ],
      [{ LABFORGE_FAULT_INJECTION: 'chunk-delay-ms=fast' }, /LABFORGE_FAULT_INJECTION .* step-delay-ms and chunk-delay-ms/],
      [{ LABFORGE_ACCEL: 'fast' }, /LABFORGE_ACCEL "fast" is not valid: use auto/],
      [{ LABFORGE_PACK_SIZE_MIB: '0.5' }, /LABFORGE_PACK_SIZE_MIB "0.5" is not valid/],
    ];
    for (const [env, message] of refused) {
      expect(() => load(env), JSON.stringify(env)).toThrow(ConfigError);
      expect(() => load(env), JSON.stringify(env)).toThrow(message);
    }
    // The lease was Number(text) before: a typo became NaN and went unnoticed.
    expect(load({ LABFORGE_LEASE_SECONDS: '2' }).operations.leaseSeconds).toBe(2);
    expect(load({}).operations.leaseSeconds).toBe(30);
    expect(load({ LABFORGE_TLS: 'off' }).tls.enabled).toBe(false);
    expect(load({ LABFORGE_TLS: '1' }).tls.enabled).toBe(true);
    expect(load({ LABFORGE_BUILTIN_IMAGES: 'none' }).compute.builtinImages).toEqual([]);
    expect(load({ LABFORGE_BUILTIN_IMAGES: 'on' }).compute.builtinImages.map((b) => b.name)).toEqual(['labforge-test-guest']);
    expect([load({}).images.directIo, load({ LABFORGE_DIRECT_IO: '0' }).images.directIo]).toEqual([true, false]);
    expect(load({ LABFORGE_CONNECT_HOST: '192.0.2.7' }).compute.connectHost).toBe('192.0.2.7');
    expect(load({ LABFORGE_PUBLIC_URL: 'https://labs.school.example' }).publicUrl).toBe('https://labs.school.example');
  });

  it('counts an empty variable as unset', () => {
    const dir = tempDir();
    const c = loadConfig({
      env: {
        LABFORGE_DATA_DIR: dir,
        LABFORGE_LISTEN: '',
        LABFORGE_LEASE_SECONDS: '',
        LABFORGE_PACK_SIZE_MIB: '',
        LABFORGE_ACCEL: '',
        LABFORGE_TLS: '',
        LABFORGE_ADMIN_TOKEN: '',
        LABFORGE_CONFIG: '',
        LABFORGE_COMPUTE_DRIVER: '',
      },
    });
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8443 });
    expect([c.operations.leaseSeconds, c.images.packBytes, c.compute.accel, c.tls.enabled, c.adminToken, c.compute.driver]).toEqual([
      30,
      32 * 2 ** 20,
      'auto',
      true,
      undefined,
      'qemu',
    ]);
  });

  it('reads the crash-test delays (LABFORGE_FAULT_INJECTION): none unless set', () => {
    const dir = tempDir();
    expect(loadConfig({ env: { LABFORGE_DATA_DIR: dir } }).faults).toEqual({});
    expect(loadConfig({ env: { LABFORGE_DATA_DIR: dir, LABFORGE_FAULT_INJECTION: 'step-delay-ms=1500' } }).faults).toEqual({ stepDelayMs: 1500 });
    expect(parseFaultInjection('step-delay-ms=1500, chunk-delay-ms=20')).toEqual({ stepDelayMs: 1500, chunkDelayMs: 20 });
  });

  it('keeps the acceleration verdict under XDG_CACHE_HOME unless LABFORGE_ACCEL_CACHE names a file', () => {
    const dir = tempDir();
    expect(loadConfig({ env: { LABFORGE_DATA_DIR: dir, XDG_CACHE_HOME: '/var/cache/x' } }).compute.accelCacheFile).toBe(
      '/var/cache/x/labforge/acceleration.json',
    );
    expect(loadConfig({ env: { LABFORGE_DATA_DIR: dir, LABFORGE_ACCEL_CACHE: 'state/accel.json' } }).compute.accelCacheFile).toBe(
      join(dir, 'state', 'accel.json'),
    );
  });

  it('picks the compute driver by name: qemu by default, the fake one for tests, a clear error otherwise', () => {
    const dir = tempDir();
    const compute = (env: Record<string, string>) => loadConfig({ env: { LABFORGE_DATA_DIR: dir, ...env } }).compute;
    const qemu = createComputeDriver(compute({}));
    expect(qemu).toBeInstanceOf(QemuDriver);
    expect((qemu as QemuDriver).vmsDir).toBe(join(dir, 'compute', 'vms'));
    expect(createComputeDriver(compute({ LABFORGE_COMPUTE_DRIVER: 'fake' }))).toBe(fakeDriver);
    expect(() => createComputeDriver(compute({ LABFORGE_COMPUTE_DRIVER: 'kubevirt' }))).toThrow(
      /There is no compute driver 'kubevirt' \(compute.driver, LABFORGE_COMPUTE_DRIVER\)\. Use one of: qemu, fake\./,
    );
  });
});
