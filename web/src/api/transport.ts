// The portal's side of the API: fetch with the session token kept in this
// browser tab (sessionStorage, never in a URL), ARM errors turned into
// exceptions with the server's message, and operations polled to the end.
import i18n from '../i18n.js';
import { API_VERSIONS, type Operation } from './types.js';

const TOKEN_KEY = 'labforge.session';
const SIGN_IN = '/providers/Labforge.Core/signIn';

/** A refusal of the server: its status, the ARM error code and the server's message as written. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The session token of this browser tab. */
export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** One request with the session token; a refusal throws ApiError with the server's message (a refused token also ends the session). */
export async function call<T>(method: string, path: string, apiVersion: string, body?: unknown): Promise<{ body: T; headers: Headers; status: number }> {
  const url = `${path}${path.includes('?') ? '&' : '?'}api-version=${apiVersion}`;
  const res = await fetch(url, {
    method,
    headers: { ...(session.token ? { authorization: `Bearer ${session.token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (res.status === 401 && path !== SIGN_IN) session.clear();
    throw new ApiError(res.status, e?.code ?? `Http${res.status}`, e?.message ?? `HTTP ${res.status}`);
  }
  return { body: parsed as T, headers: res.headers, status: res.status };
}

/** The body of a GET. */
export const get = async <T>(path: string, apiVersion: string) => (await call<T>('GET', path, apiVersion)).body;

/** The body of a write that starts no operation. */
export const send = async <T>(method: string, path: string, apiVersion: string, body?: unknown) => (await call<T>(method, path, apiVersion, body)).body;

/** A write that may start a long-running operation: its answer and the operation's URL (the Azure-AsyncOperation header), if one started. */
export async function start<T>(method: string, path: string, apiVersion: string, body?: unknown): Promise<{ body: T; operationUrl: string | null }> {
  const r = await call<T>(method, path, apiVersion, body);
  return { body: r.body, operationUrl: r.headers.get('azure-asyncoperation') };
}

/** The operation URL of a write that must have started one. */
export function operationOf(r: { operationUrl: string | null }): string {
  if (!r.operationUrl) throw new ApiError(500, 'NoOperation', i18n.t('errors.noOperation'));
  return r.operationUrl;
}

/** Polls an operation URL every second until it ends, reporting its percent; gives up (the operation runs on) after `timeoutMs`. */
export async function follow(operationUrl: string, onProgress: (percent: number) => void = () => {}, timeoutMs = 60 * 60_000): Promise<Operation> {
  const u = new URL(operationUrl, location.origin);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const op = await get<Operation>(u.pathname, API_VERSIONS.labforge);
    onProgress(op.percentComplete ?? 0);
    if (op.status !== 'InProgress') return op;
    if (Date.now() > deadline) throw new ApiError(504, 'StillRunning', i18n.t('errors.stillRunning'));
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** Starts a long-running action and resolves with the operation once it ended (or after 15 minutes, when the operations page has it). */
export async function runOperation(method: string, path: string, apiVersion: string, body?: unknown): Promise<Operation> {
  return follow(operationOf(await start(method, path, apiVersion, body)), undefined, 15 * 60_000);
}
