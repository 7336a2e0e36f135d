// Shared steps of the image-store tests: upload bytes over tus, read a stored
// disk back as one buffer, and look at or damage what a region's directory
// holds (packs and chunk files) as a failing disk would.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import * as tus from 'tus-js-client';
import { ChunkStore, chunkKey, type DiskManifest } from '../../src/imagestore/chunk-store.js';
import { LocalBlobDriver } from '../../src/imagestore/drivers/local.driver.js';

/** Uploads `data` to a labforge server's /uploads and returns the upload's URL; `ca` trusts a TLS server's CA. */
export function tusUpload(serverUrl: string, token: string, data: Buffer, opts: { ca?: Buffer; chunkSize?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(data, {
      endpoint: `${serverUrl}/uploads`,
      headers: { authorization: `Bearer ${token}` },
      ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
      ...(opts.ca ? { httpStack: new tus.DefaultHttpStack({ agent: new https.Agent({ ca: opts.ca }) } as never) } : {}),
      retryDelays: [],
      onSuccess: () => resolve(u.url as string),
      onError: reject,
    });
    u.start();
  });
}

/** A stored disk's whole content, every chunk verified. */
export async function readAllDisk(store: ChunkStore, disk: DiskManifest): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of store.readDisk(disk)) parts.push(p);
  return Buffer.concat(parts);
}

/** A fresh look at a local region directory (its own index, read from disk). */
const look = (dir: string) => new ChunkStore(new LocalBlobDriver(dir), 'look');

/** The chunks a local region directory holds, with their sizes. */
export function storedChunks(dir: string): Promise<Map<string, number>> {
  return look(dir).storedChunks();
}

/** Overwrites a stored chunk's bytes in place with other bytes of the same length, as a failing disk would. */
export async function corruptChunk(dir: string, digest: string): Promise<void> {
  const loc = (await look(dir).locations()).get(digest);
  if (!loc) throw new Error(`no chunk ${digest} in ${dir}`);
  const h = await open(join(dir, ...(loc.pack ?? chunkKey(digest)).split('/')), 'r+');
  try {
    await h.write(randomBytes(loc.length), 0, loc.length, loc.offset);
  } finally {
    await h.close();
  }
}

/** Removes one stored chunk (rewriting its pack without it), as a lost write would. */
export async function removeChunk(dir: string, digest: string): Promise<void> {
  const store = look(dir);
  const loc = (await store.locations()).get(digest);
  if (!loc) throw new Error(`no chunk ${digest} in ${dir}`);
  if (!loc.pack) {
    rmSync(join(dir, ...chunkKey(digest).split('/')));
    return;
  }
  const pack = (await store.packList()).find((p) => p.key === loc.pack);
  await store.repack(loc.pack, pack?.entries.filter((e) => e.digest !== digest) ?? []);
}
