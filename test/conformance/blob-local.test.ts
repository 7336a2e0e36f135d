// The local directory blob driver passes the shared conformance suite.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBlobDriver } from '../../src/imagestore/drivers/index.js';
import { LocalBlobDriver } from '../../src/imagestore/drivers/local.driver.js';
import { runBlobDriverConformance } from './blob.case.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const files = (root: string): string[] =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)).split(sep).join('/'));

// On a disk filesystem large blobs go with direct I/O; on tmpfs, which refuses it, the ordinary way.
const places: [string, string][] = [['local', tmpdir()]];
if (existsSync('/dev/shm')) places.push(['local on tmpfs (no direct I/O)', '/dev/shm']);
for (const [name, parent] of places) {
  runBlobDriverConformance(name, {
    create: async () => {
      const dir = mkdtempSync(join(parent, 'labforge-blob-'));
      dirs.push(dir);
      return new LocalBlobDriver(dir);
    },
    simulateCrashedWrite: async (d, key) => {
      const root = (d as LocalBlobDriver).root;
      const parts = key.split('/');
      writeFileSync(join(root, ...parts.slice(0, -1), '.tmp-deadbeef00000000'), 'half a chunk');
    },
    rawEntries: async (d) => files((d as LocalBlobDriver).root),
  });
}

describe('blob driver registry', () => {
  it('creates the driver a region names and explains unknown names and missing options', () => {
    const dir = mkdtempSync(join(tmpdir(), 'labforge-blob-'));
    dirs.push(dir);
    expect(createBlobDriver('site-a', { driver: 'local', options: { path: dir } }).kind).toBe('local');
    expect(() => createBlobDriver('site-a', { driver: 'tape', options: {} })).toThrow(/driver 'tape'.*Use one of: local/);
    expect(() => createBlobDriver('site-b', { driver: 'local', options: {} })).toThrow(/needs options.path/);
  });
});
