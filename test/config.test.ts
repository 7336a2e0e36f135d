// Configuration: embedded defaults, the file and its schema errors, and the
// environment variables that override it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.js';

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
});
