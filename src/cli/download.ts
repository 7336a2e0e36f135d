// Downloads a version's disk (raw, fixed VHD or qcow2) to a file, with progress;
// the file appears under its name only once it is complete.
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { type ApiClient, ApiError, connectionError } from '../client/api-client.js';
import { transferProgress } from './upload.js';

export async function downloadTo(client: ApiClient, path: string, query: Record<string, string | undefined>, file: string): Promise<number> {
  const url = client.url(path, query);
  const mod = url.protocol === 'https:' ? https : http;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = mod.get(url, { headers: client.authHeaders(), agent: false, ...(client.caCertificates ? { ca: client.caCertificates } : {}) }, resolve);
    req.on('error', (err) => reject(connectionError(err, url)));
  });
  if ((res.statusCode ?? 0) >= 400) {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    let body: { error?: { code?: string; message?: string } } = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      // not JSON: fall back to the status
    }
    throw new ApiError(
      res.statusCode ?? 0,
      { code: body.error?.code ?? `Http${res.statusCode}`, message: body.error?.message ?? `HTTP ${res.statusCode}` },
      'GET',
      url.href,
    );
  }
  const size = Number(res.headers['content-length'] ?? 0);
  const progress = await transferProgress(file, size, 'Downloading');
  const partial = `${file}.partial`;
  let received = 0;
  res.on('data', (c: Buffer) => {
    received += c.length;
    progress.update(received);
  });
  try {
    await pipeline(res, createWriteStream(partial));
    if (size && received !== size) throw new Error(`the download stopped after ${received} of ${size} bytes; run the command again`);
    await rename(partial, file);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  } finally {
    progress.stop();
  }
  return received;
}
