// Shared steps of the image-store tests: upload bytes over tus, and read a
// stored disk back as one buffer.
import https from 'node:https';
import * as tus from 'tus-js-client';
import type { ChunkStore, DiskManifest } from '../../src/imagestore/chunk-store.js';

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
