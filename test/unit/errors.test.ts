// Errors by layer: the image store, disk formats, compute and the operation
// runner raise errors with a code and no HTTP status; src/api/errors.ts alone
// turns them into statuses and the ARM envelope.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { envelope, httpStatus, sendError } from '../../src/api/errors.js';
import { ComputeError } from '../../src/compute/errors.js';
import { buildSeed } from '../../src/compute/qemu/seed.js';
import { DiskFormatError, diskError, inspect, isDiskError } from '../../src/diskformat/index.js';
import { conflict, LabforgeError, notFound, preconditionFailed } from '../../src/errors.js';
import { checkKey } from '../../src/imagestore/blob-driver.js';
import type { ChunkStore } from '../../src/imagestore/chunk-store.js';
import { ImageStoreError } from '../../src/imagestore/errors.js';
import { requireRegionStore } from '../../src/imagestore/maintenance.js';
import { DomainError } from '../../src/lib/errors.js';
import { WorkerError } from '../../src/operations/errors.js';

const caught = async (fn: () => unknown): Promise<unknown> => {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
};

describe('lower-layer errors', () => {
  it('an image-store error carries a code, message and target, and no HTTP status', async () => {
    const e = await caught(() => requireRegionStore(new Map([['site-a', {} as ChunkStore]]), 'mars'));
    expect(e).toBeInstanceOf(ImageStoreError);
    expect(e).toBeInstanceOf(DomainError);
    expect(e).not.toBeInstanceOf(LabforgeError);
    expect(e).not.toHaveProperty('status');
    expect((e as ImageStoreError).toJSON()).toEqual({
      code: 'InvalidParameter',
      message: "'mars' is not a region of this server. Use one of: site-a.",
      target: 'region',
    });
  });

  it('a disk-format error carries a code, message and target, and no HTTP status', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labforge-errors-'));
    try {
      await writeFile(join(dir, 'empty.raw'), '');
      const e = await caught(() => inspect(join(dir, 'empty.raw')));
      expect(e).toBeInstanceOf(DiskFormatError);
      expect(e).not.toHaveProperty('status');
      expect((e as DiskFormatError).toJSON()).toEqual({
        code: 'DiskTruncated',
        message: 'The file is empty; the upload probably did not finish. Upload the complete file again.',
        target: 'image',
      });
      expect(isDiskError(e, 'DiskTruncated')).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('compute and operation-runner errors carry no HTTP status either', async () => {
    const seed = await caught(() =>
      buildSeed({ instanceId: 'i', hostname: 'not a name', osType: 'Linux', adminUser: { name: 'ada', password: 'x' } }, '/nonexistent/seed.img'),
    );
    expect(seed).toBeInstanceOf(ComputeError);
    expect(seed).not.toHaveProperty('status');
    expect((seed as ComputeError).target).toBe('hostname');
    expect(new WorkerError('OperationAbandoned', 'gone')).not.toHaveProperty('status');
  });
});

describe('the API maps codes to HTTP statuses', () => {
  it.each([
    ['a refused disk image', diskError('DiskCorrupt', 'damaged'), 400],
    ['qemu-img misused by labforge', new DiskFormatError('InternalError', 'not inspected'), 500],
    ['a disk shorter than declared (image store)', new ImageStoreError('DiskTruncated', 'short'), 400],
    ['a disk longer than declared', new ImageStoreError('DiskSizeMismatch', 'long'), 400],
    ['an unknown region', new ImageStoreError('InvalidParameter', 'mars', 'region'), 400],
    ['a missing chunk', new ImageStoreError('ChunkMissing', 'gone'), 500],
    ['a corrupt pack', new ImageStoreError('PackCorrupt', 'bad'), 500],
    ['a VM the host does not have', new ComputeError('ResourceNotFound', 'no VM'), 404],
    ['a VM whose disk file is gone', new ComputeError('DiskMissing', 'no disk'), 409],
    ['QEMU refusing to start', new ComputeError('QemuStartFailed', 'refused'), 500],
    ['a bad VM id', new ComputeError('InvalidParameter', 'bad id'), 400],
    ['an abandoned operation', new WorkerError('OperationAbandoned', 'abandoned'), 500],
    ['a service error (its own status)', preconditionFailed('stale'), 412],
    ['a service not-found', notFound('ResourceNotFound', 'none'), 404],
    ['a service conflict', conflict('busy'), 409],
    ['a DomainError of no known layer', new DomainError('Whatever', 'hm'), 500],
  ])('%s', (_what, err, status) => {
    expect(httpStatus(err)).toBe(status);
  });

  it('checkKey refuses with a server error (a bad key is labforge’s fault)', () => {
    let e: unknown;
    try {
      checkKey('../escape');
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(ImageStoreError);
    expect(httpStatus(e as ImageStoreError)).toBe(500);
  });

  it('the error handler answers a lower-layer error with its status and the ARM envelope', async () => {
    const app = Fastify();
    app.setErrorHandler(sendError);
    app.get('/short', async () => {
      throw new ImageStoreError('DiskSizeMismatch', 'The disk content is 3 bytes but its declared virtual size is 4 bytes.');
    });
    app.get('/refused', async () => {
      throw diskError('DiskEncrypted', 'This VMDK is encrypted.');
    });
    app.get('/gone', async () => {
      throw new ComputeError('DiskMissing', 'The disk file of VM v is missing on this host.');
    });
    try {
      const short = await app.inject({ method: 'GET', url: '/short' });
      expect(short.statusCode).toBe(400);
      expect(short.json()).toEqual(envelope('DiskSizeMismatch', 'The disk content is 3 bytes but its declared virtual size is 4 bytes.'));
      const refused = await app.inject({ method: 'GET', url: '/refused' });
      expect(refused.statusCode).toBe(400);
      expect(refused.json()).toEqual({ error: { code: 'DiskEncrypted', message: 'This VMDK is encrypted.', target: 'image' } });
      const gone = await app.inject({ method: 'GET', url: '/gone' });
      expect(gone.statusCode).toBe(409);
      expect(gone.json().error.code).toBe('DiskMissing');
    } finally {
      await app.close();
    }
  });
});

describe('layering', () => {
  const SRC = resolve(import.meta.dirname, '..', '..', 'src');
  const LOWER = ['imagestore', 'diskformat', 'compute', 'operations', 'db', 'config', 'tls', 'lib'];

  it('lower layers never import the service errors (src/errors.ts) nor construct LabforgeError', async () => {
    const offenders: string[] = [];
    for (const layer of LOWER) {
      const files = (await readdir(join(SRC, layer), { recursive: true }).catch(() => [] as string[])).filter((f) => String(f).endsWith('.ts'));
      for (const f of files) {
        const file = join(SRC, layer, String(f));
        const text = await readFile(file, 'utf8');
        for (const m of text.matchAll(/from '(\.[^']+)'/g)) {
          if (resolve(dirname(file), m[1] as string) === join(SRC, 'errors.js')) offenders.push(`${relative(SRC, file)} imports ${m[1]}`);
        }
        if (text.includes('LabforgeError')) offenders.push(`${relative(SRC, file)} mentions LabforgeError`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
