// The conformance suite every blob driver must pass (local now, S3 later).
// A driver test file calls runBlobDriverConformance with a factory that
// returns a fresh, empty driver and a hook that simulates a crashed write.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BlobDriver } from '../../src/imagestore/blob-driver.js';

export interface ConformanceTarget {
  /** A new, empty store. */
  create(): Promise<BlobDriver>;
  /** Leaves behind what a write interrupted by a crash would (for cleanupTemporary); undefined when the driver cannot have any. */
  simulateCrashedWrite?(driver: BlobDriver, key: string): Promise<void>;
  /** Lists the driver's raw entries, including temporary ones, to check that nothing is left over. */
  rawEntries?(driver: BlobDriver): Promise<string[]>;
}

const collect = async (it: AsyncIterable<{ key: string; size: number }>) => {
  const out: Array<{ key: string; size: number }> = [];
  for await (const x of it) out.push(x);
  return out;
};

export function runBlobDriverConformance(name: string, target: ConformanceTarget): void {
  describe(`blob driver conformance: ${name}`, () => {
    it('stores and returns bytes exactly, and says when a key is missing', async () => {
      const d = await target.create();
      const data = randomBytes(100_000);
      expect(await d.put('chunks/ab/abcdef', data)).toBe(true);
      expect(Buffer.compare((await d.get('chunks/ab/abcdef')) as Buffer, data)).toBe(0);
      expect(await d.stat('chunks/ab/abcdef')).toMatchObject({ key: 'chunks/ab/abcdef', size: 100_000 });
      expect(await d.get('chunks/ab/missing')).toBeUndefined();
      expect(await d.stat('chunks/ab/missing')).toBeUndefined();
      expect(await d.put('empty', new Uint8Array(0))).toBe(true);
      expect((await d.get('empty'))?.length).toBe(0);
    });

    it('treats putting an existing key as a no-op unless asked to overwrite', async () => {
      const d = await target.create();
      expect(await d.put('k', Buffer.from('first'))).toBe(true);
      expect(await d.put('k', Buffer.from('second'))).toBe(false);
      expect((await d.get('k'))?.toString()).toBe('first');
      expect(await d.put('k', Buffer.from('third'), { overwrite: true })).toBe(true);
      expect((await d.get('k'))?.toString()).toBe('third');
    });

    it('lets exactly one of many concurrent writers of the same key create it', async () => {
      const d = await target.create();
      const data = randomBytes(1 << 20);
      const results = await Promise.all(Array.from({ length: 8 }, () => d.put('chunks/00/same', data)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(Buffer.compare((await d.get('chunks/00/same')) as Buffer, data)).toBe(0);
    });

    it('touches an existing blob when it is put again, so garbage collection spares it', async () => {
      const d = await target.create();
      await d.put('chunks/ee/e1', Buffer.from('x'));
      const before = (await d.stat('chunks/ee/e1'))?.modifiedMs as number;
      expect(before).toBeGreaterThan(Date.now() - 60_000);
      await new Promise((r) => setTimeout(r, 30));
      expect(await d.put('chunks/ee/e1', Buffer.from('x'))).toBe(false);
      expect((await d.stat('chunks/ee/e1'))?.modifiedMs as number).toBeGreaterThan(before);
      const listed = await collect(d.list('chunks/ee/'));
      expect((listed[0] as { modifiedMs?: number }).modifiedMs).toBeGreaterThan(before);
    });

    it('serves batched puts at once and makes them durable with sync()', async () => {
      const d = await target.create();
      for (let i = 0; i < 5; i++) expect(await d.put(`chunks/ff/f${i}`, Buffer.from(`v${i}`), { batch: true })).toBe(true);
      expect((await d.get('chunks/ff/f3'))?.toString()).toBe('v3');
      await d.sync();
      await d.sync();
      expect((await collect(d.list('chunks/ff/'))).length).toBe(5);
    });

    it('stores large blobs', async () => {
      const d = await target.create();
      const data = randomBytes(8 << 20);
      await d.put('big', data);
      expect(Buffer.compare((await d.get('big')) as Buffer, data)).toBe(0);
      // A size that is no whole number of disk blocks (the last chunk of a disk may be one), batched or not.
      const odd = randomBytes(100_001);
      await d.put('odd', odd);
      await d.put('chunks/0d/odd', odd.subarray(1), { batch: true });
      await d.sync();
      expect(Buffer.compare((await d.get('odd')) as Buffer, odd)).toBe(0);
      expect((await d.stat('chunks/0d/odd'))?.size).toBe(100_000);
      expect(Buffer.compare((await d.get('chunks/0d/odd')) as Buffer, odd.subarray(1))).toBe(0);
    });

    it('reads a range of a blob, short at its end, and nothing for a missing blob', async () => {
      const d = await target.create();
      const data = randomBytes(3 << 20);
      await d.put('packs/r.pack', data);
      expect(Buffer.compare((await d.getRange('packs/r.pack', 1 << 20, 4096)) as Buffer, data.subarray(1 << 20, (1 << 20) + 4096))).toBe(0);
      expect((await d.getRange('packs/r.pack', (3 << 20) - 10, 100))?.length).toBe(10);
      expect(await d.getRange('packs/missing.pack', 0, 10)).toBeUndefined();
    });

    it('writes a blob in parts that appears whole at commit, and not at all when aborted', async () => {
      const d = await target.create();
      const parts = [randomBytes(1 << 20), randomBytes(100_001), randomBytes(4096)];
      const w = await d.openWriter('packs/w.pack');
      // Out of order and at once, as chunks of a pack arrive; positions are multiples of 4096.
      await Promise.all([w.write(parts[2] as Buffer, (1 << 20) + 102_400), w.write(parts[0] as Buffer, 0), w.write(parts[1] as Buffer, 1 << 20)]);
      expect(await d.stat('packs/w.pack')).toBeUndefined();
      expect((await collect(d.list('packs/'))).length).toBe(0);
      await w.commit();
      await d.sync();
      const back = (await d.get('packs/w.pack')) as Buffer;
      expect(back.length).toBe((1 << 20) + 102_400 + 4096);
      expect(Buffer.compare(back.subarray(0, 1 << 20), parts[0] as Buffer)).toBe(0);
      expect(Buffer.compare(back.subarray(1 << 20, (1 << 20) + 100_001), parts[1] as Buffer)).toBe(0);
      expect(Buffer.compare(back.subarray((1 << 20) + 102_400), parts[2] as Buffer)).toBe(0);
      const dropped = await d.openWriter('packs/x.pack');
      await dropped.write(randomBytes(5000), 0);
      await dropped.abort();
      expect(await d.stat('packs/x.pack')).toBeUndefined();
      if (target.rawEntries) expect(await target.rawEntries(d)).toEqual(['packs/w.pack']);
      // A blob ending in a part that is no whole number of 4 KiB blocks ends exactly there.
      const odd = await d.openWriter('packs/odd.pack');
      await odd.write(parts[1] as Buffer, 0);
      await odd.commit();
      expect((await d.stat('packs/odd.pack'))?.size).toBe(100_001);
    });

    it('lists keys under a prefix in key order with their sizes', async () => {
      const d = await target.create();
      for (const k of ['chunks/bb/b2', 'chunks/aa/a1', 'chunks/bb/b1', 'manifests/v1.json', 'chunksX']) await d.put(k, Buffer.alloc(k.length));
      expect((await collect(d.list('chunks/'))).map(({ key, size }) => ({ key, size }))).toEqual([
        { key: 'chunks/aa/a1', size: 12 },
        { key: 'chunks/bb/b1', size: 12 },
        { key: 'chunks/bb/b2', size: 12 },
      ]);
      expect((await collect(d.list('chunks/bb/'))).map((x) => x.key)).toEqual(['chunks/bb/b1', 'chunks/bb/b2']);
      expect((await collect(d.list(''))).map((x) => x.key)).toEqual(['chunks/aa/a1', 'chunks/bb/b1', 'chunks/bb/b2', 'chunksX', 'manifests/v1.json']);
      expect(await collect(d.list('nothing/'))).toEqual([]);
    });

    it('deletes and moves blobs, reporting whether they existed', async () => {
      const d = await target.create();
      await d.put('chunks/cc/c1', Buffer.from('x'));
      expect(await d.move('chunks/cc/c1', 'quarantine/c1.bad')).toBe(true);
      expect(await d.get('chunks/cc/c1')).toBeUndefined();
      expect((await d.get('quarantine/c1.bad'))?.toString()).toBe('x');
      expect(await d.move('chunks/cc/c1', 'quarantine/again')).toBe(false);
      expect(await d.delete('quarantine/c1.bad')).toBe(true);
      expect(await d.delete('quarantine/c1.bad')).toBe(false);
    });

    it('refuses keys that could escape the store', async () => {
      const d = await target.create();
      for (const bad of ['../outside', '/abs', 'a//b', 'a/./b', 'a/../b', '', 'sp ace']) {
        await expect(d.put(bad, Buffer.from('x')), bad).rejects.toMatchObject({ code: 'InvalidBlobKey' });
      }
      await expect(d.get('../etc/passwd')).rejects.toMatchObject({ code: 'InvalidBlobKey' });
    });

    it('leaves no temporary files after writes, and removes the leftovers of a crashed write', async (ctx) => {
      if (!target.simulateCrashedWrite || !target.rawEntries) ctx.skip('this driver cannot leave partial writes behind');
      const d = await target.create();
      for (let i = 0; i < 10; i++) await d.put(`chunks/dd/d${i}`, randomBytes(1000));
      await d.put('chunks/dd/d0', randomBytes(10), { overwrite: true });
      expect((await target.rawEntries!(d)).filter((e) => !e.startsWith('chunks/dd/d'))).toEqual([]);
      await target.simulateCrashedWrite!(d, 'chunks/dd/crashed');
      expect((await target.rawEntries!(d)).length).toBe(11);
      // A crashed write is never visible as a blob.
      expect(await d.get('chunks/dd/crashed')).toBeUndefined();
      expect((await collect(d.list('chunks/'))).length).toBe(10);
      expect(await d.cleanupTemporary(0)).toBe(1);
      expect((await target.rawEntries!(d)).length).toBe(10);
    });
  });
}
