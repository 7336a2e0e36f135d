// Resumable uploads of disk files to the server's tus endpoint (/uploads).
// Each upload's URL is remembered in <config dir>/uploads.json, keyed by the
// file's absolute path, size and modification time, so running the same
// command again after Ctrl+C or a network failure continues from the offset
// the server already holds instead of starting over.
import { createReadStream, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { basename, join, resolve } from 'node:path';
import type { HttpRequest, HttpResponse } from 'tus-js-client';
import { DefaultHttpStack, DetailedError, Upload } from 'tus-js-client';
import { type ApiClient, ApiError, connectionError } from '../client/api-client.js';
import type { ErrorBody } from '../contract/index.js';
import { configDir } from './config-store.js';
import { CliError, EXIT } from './errors.js';

const MiB = 1024 * 1024;
export const UPLOAD_CHUNK_BYTES = 16 * MiB;
// Retries within one run; after them the command ends and a rerun resumes.
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];

/** One remembered upload in uploads.json. */
export interface StoredUpload {
  /** Absolute URL of the upload on the server. */
  url: string;
  /** Origin of the server the upload was made to; an entry is only reused for the same server. */
  server: string;
  path: string;
  size: number;
  mtimeMs: number;
  createdAt: string;
}

export function uploadsFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'uploads.json');
}

/** The key of a file in uploads.json: a changed file (size or time) never resumes an old upload. */
export function uploadKey(path: string, size: number, mtimeMs: number): string {
  return `${resolve(path)}|${size}|${Math.round(mtimeMs)}`;
}

function readUploads(file: string): Record<string, StoredUpload> {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, StoredUpload>) : {};
  } catch {
    // Missing or damaged: nothing to resume, which only costs a fresh upload.
    return {};
  }
}

/** Read-modify-write of uploads.json, replaced atomically so a crash never leaves half a file. */
function updateUploads(file: string, change: (all: Record<string, StoredUpload>) => void): void {
  try {
    const all = readUploads(file);
    change(all);
    mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  } catch (err) {
    // Remembering is a convenience: the upload itself goes on.
    process.stderr.write(`labforge: cannot update ${file} (${(err as Error).message}); an interrupted upload will start over.\n`);
  }
}

export function findStoredUpload(key: string, server: string, file = uploadsFile()): StoredUpload | undefined {
  const e = readUploads(file)[key];
  return e && typeof e.url === 'string' && e.server === server ? e : undefined;
}

export function forgetUpload(key: string, file = uploadsFile()): void {
  if (readUploads(file)[key] === undefined) return;
  updateUploads(file, (all) => {
    delete all[key];
  });
}

export interface UploadedFile {
  path: string;
  /** Absolute URL of the finished upload, for storageProfile source.uri. */
  url: string;
  /** The uploads.json key; forget it once the server has taken the upload. */
  key: string;
  size: number;
}

const mib = (n: number) => (n / MiB).toFixed(1);

/** A bar on a terminal, a line per tenth otherwise; always on stderr. */
export async function transferProgress(name: string, size: number, verb = 'Uploading') {
  if (process.stderr.isTTY) {
    const { default: cliProgress } = await import('cli-progress');
    const bar = new cliProgress.SingleBar(
      {
        format: ' {bar} {percentage}% | {name} {done}/{total_mib} MiB',
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(size, 0, { name, done: mib(0), total_mib: mib(size) });
    return {
      update: (sent: number) => bar.update(sent, { done: mib(sent) }),
      note: (line: string) => {
        bar.stop();
        process.stderr.write(`${line}\n`);
        bar.start(size, 0, { name, done: mib(0), total_mib: mib(size) });
      },
      stop: () => bar.stop(),
    };
  }
  // Logs and CI get a line per tenth of the file, not one per progress event.
  let lastTenth = -1;
  return {
    update: (sent: number) => {
      const pct = size ? Math.floor((sent / size) * 100) : 100;
      if (Math.floor(pct / 10) === lastTenth) return;
      lastTenth = Math.floor(pct / 10);
      process.stderr.write(`${verb} ${name}: ${mib(sent)} of ${mib(size)} MiB (${pct}%)\n`);
    },
    note: (line: string) => process.stderr.write(`${line}\n`),
    stop: () => {},
  };
}

/** An error from the tus client as the CLI reports it: ApiError for HTTP answers, ConnectionError when unreachable. */
function uploadError(err: Error, endpoint: URL, name: string): Error {
  const resumeHint = ` Run the same command again to continue the upload of ${name} where it stopped.`;
  if (err instanceof DetailedError) {
    const res = err.originalResponse;
    if (res) {
      const status = res.getStatus();
      let body: ErrorBody = {
        code: `Http${status}`,
        message: `The upload of ${name} was refused (HTTP ${status})${res.getBody() ? `: ${res.getBody().slice(0, 200)}` : '.'}`,
      };
      try {
        const env = (JSON.parse(res.getBody()) as { error?: Partial<ErrorBody> }).error;
        if (env && typeof env.message === 'string') body = { code: env.code ?? body.code, message: env.message, target: env.target, details: env.details };
      } catch {
        // Not JSON (tus answers plain text): keep the generic message.
      }
      if (status >= 500) body.message += resumeHint;
      return new ApiError(status, body, err.originalRequest?.getMethod() ?? 'PATCH', err.originalRequest?.getURL() ?? endpoint.href);
    }
    const cause = err.causingError as NodeJS.ErrnoException | null;
    if (cause) {
      const ce = connectionError(cause, endpoint);
      ce.message += resumeHint;
      return ce;
    }
  }
  return new CliError(`The upload of ${name} failed: ${err.message}.${resumeHint}`);
}

/**
 * Uploads one file, resuming an earlier interrupted upload of the same file to
 * the same server. Resolves with the upload's URL once the server holds every byte.
 */
export async function uploadFile(client: ApiClient, path: string): Promise<UploadedFile> {
  const abs = resolve(path);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(abs);
  } catch (err) {
    throw new CliError(`Cannot read ${path}: ${(err as Error).message}`, EXIT.usage);
  }
  if (!st.isFile()) throw new CliError(`${path} is not a file.`, EXIT.usage);
  const size = st.size;
  const name = basename(abs);
  const endpoint = client.url('/uploads');
  const server = endpoint.origin;
  const store = uploadsFile();
  const key = uploadKey(abs, size, st.mtimeMs);
  const previous = findStoredUpload(key, server, store);

  const isHttps = endpoint.protocol === 'https:';
  // One kept-alive connection for the whole file, trusting the login's CA like every other call.
  const agent = isHttps ? new https.Agent({ keepAlive: true, maxSockets: 1, ...(client.caCertificates ? { ca: client.caCertificates } : {}) }) : undefined;
  const progress = await transferProgress(name, size);
  const onInterrupt = () => {
    progress.stop();
    process.stderr.write(`\nlabforge: upload of ${name} interrupted; run the same command again to continue where it stopped.\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      const u: Upload = new Upload(createReadStream(abs), {
        endpoint: endpoint.href,
        ...(previous ? { uploadUrl: previous.url } : {}),
        uploadSize: size,
        chunkSize: UPLOAD_CHUNK_BYTES,
        retryDelays: RETRY_DELAYS,
        headers: client.authHeaders(),
        metadata: { filename: name },
        httpStack: new DefaultHttpStack(agent ? { agent } : {}),
        // Remembering is ours (uploads.json), not tus-js-client's.
        storeFingerprintForResuming: false,
        onUploadUrlAvailable: () => {
          if (!u.url || u.url === previous?.url) return;
          const entry: StoredUpload = { url: u.url, server, path: abs, size, mtimeMs: st.mtimeMs, createdAt: new Date().toISOString() };
          updateUploads(store, (all) => {
            all[key] = entry;
          });
        },
        onAfterResponse: (req: HttpRequest, res: HttpResponse) => {
          // A HEAD answer tells where a resumed upload continues.
          if (req.getMethod() !== 'HEAD' || res.getStatus() >= 300) return;
          const offset = Number(res.getHeader('Upload-Offset'));
          if (Number.isFinite(offset) && offset > 0) {
            progress.note(
              offset >= size
                ? `The server already holds all of ${name} (${mib(size)} MiB).`
                : `Resuming the upload of ${name} at ${mib(offset)} of ${mib(size)} MiB.`,
            );
            progress.update(offset);
          }
        },
        onProgress: (sent) => progress.update(sent),
        onSuccess: () => resolveUrl(u.url as string),
        onError: (err) => reject(uploadError(err, endpoint, name)),
      });
      u.start();
    });
    progress.update(size);
    return { path: abs, url, key, size };
  } finally {
    progress.stop();
    process.removeListener('SIGINT', onInterrupt);
    agent?.destroy();
  }
}
