// Replication between two regions' stores: only missing chunks travel, each
// is verified on arrival, the manifest arrives last, and an interrupted
// replication resumes without re-sending what arrived.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChunkStore, MANIFEST_FORMAT } from '../../src/imagestore/chunk-store.js';
import { LocalBlobDriver } from '../../src/imagestore/drivers/local.driver.js';
import { replicateVersion } from '../../src/imagestore/replicate.js';
import { corruptChunk } from '../helpers/images.js';

const MiB = 1 << 20;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const region = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `labforge-${name}-`));
  dirs.push(dir);
  return { dir, store: new ChunkStore(new LocalBlobDriver(dir), name) };
};
async function* once(buf: Buffer) {
  yield buf;
}
async function storeVersion(store: ChunkStore, name: string, disk: Buffer) {
  const { disk: d } = await store.writeDisk('os', once(disk), disk.length);
  await store.putManifest(name, { format: MANIFEST_FORMAT, disks: [d] });
  return d;
}

describe('replication', () => {
  it('sends every chunk of a first version, then only the changed chunks of the next', async () => {
    const a = region('a');
    const b = region('b');
    const v1 = Buffer.concat([randomBytes(6 * MiB), Buffer.alloc(4 * MiB), randomBytes(2 * MiB)]);
    await storeVersion(a.store, 'v1', v1);
    const first = await replicateVersion(a.store, b.store, 'v1');
    expect(first).toMatchObject({ chunksTotal: 8, chunksSkipped: 0, bytesSent: 8 * MiB });
    expect(await b.store.hasManifest('v1')).toBe(true);

    const v2 = Buffer.from(v1);
    randomBytes(3 * MiB).copy(v2, 2 * MiB);
    await storeVersion(a.store, 'v2', v2);
    const second = await replicateVersion(a.store, b.store, 'v2');
    expect(second.bytesSent).toBe(3 * MiB);
    expect(second.chunksSkipped).toBe(5);
    // The replica reads back identical content.
    const parts: Buffer[] = [];
    const m = await b.store.getManifest('v2');
    for await (const p of b.store.readDisk(m!.disks[0]!)) parts.push(p);
    expect(Buffer.compare(Buffer.concat(parts), v2)).toBe(0);
    // Replicating again is a no-op.
    expect((await replicateVersion(a.store, b.store, 'v2')).bytesSent).toBe(0);
  });

  it('leaves no usable replica when interrupted, and resumes without re-sending what arrived', async () => {
    const a = region('a');
    const b = region('b');
    await storeVersion(a.store, 'v1', randomBytes(10 * MiB));
    const abort = new AbortController();
    await expect(
      replicateVersion(a.store, b.store, 'v1', {
        signal: abort.signal,
        concurrency: 1,
        onProgress: (p) => {
          if (p.chunksDone === 4) abort.abort(new Error('killed'));
        },
      }),
    ).rejects.toThrow('killed');
    expect(await b.store.hasManifest('v1')).toBe(false);
    const resumed = await replicateVersion(a.store, b.store, 'v1');
    expect(resumed.chunksSkipped).toBe(4);
    expect(resumed.bytesSent).toBe(6 * MiB);
    expect(await b.store.hasManifest('v1')).toBe(true);
  });

  it('refuses to replicate a corrupt chunk and does not commit the replica', async () => {
    const a = region('a');
    const b = region('b');
    const d = await storeVersion(a.store, 'v1', randomBytes(3 * MiB));
    await corruptChunk(a.dir, d.blocks[2] as string);
    await expect(replicateVersion(a.store, b.store, 'v1')).rejects.toMatchObject({ code: 'ChunkCorrupt' });
    expect(await b.store.hasManifest('v1')).toBe(false);
    expect(await b.store.hasChunk(d.blocks[2] as string)).toBe(false);
  });
});
