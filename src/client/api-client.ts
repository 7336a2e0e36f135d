// A small typed client for the labforge HTTPS API, used by the command-line
// tool and the image factory. It speaks JSON over node:http/node:https, sends
// the bearer token, trusts an extra CA file, follows nextLink on list calls
// and turns ARM error envelopes into ApiError. The shapes it sends and
// receives, and the api-versions, are the wire contract's (src/contract).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import {
  type Account,
  type AccountWithInvitation,
  API_VERSION,
  type ConsoleUrls,
  type CreatedToken,
  type ErrorBody,
  type ErrorDetail,
  type Gallery,
  type GalleryImage,
  type GalleryImageInput,
  type GalleryInput,
  type Host,
  type ImageVersion,
  type ImageVersionInput,
  type InvitedLabUser,
  type Lab,
  type LabInput,
  type LabPlan,
  type LabPlanImage,
  type LabPlanInput,
  type LabUser,
  type LabVm,
  type Location,
  type Operation,
  type OperationStatus,
  type ResourceGroup,
  type ResourceGroupInput,
  type SavedImage,
  type SaveImageInput,
  type Session,
  type Subscription,
  type Token,
  type TokenInput,
  type VirtualMachine,
  type VirtualMachineInput,
  type WhoAmI,
} from '../contract/index.js';

/** The answer to a write that may start a long-running operation. */
export interface Accepted<T> {
  status: number;
  body: T;
  /** The Azure-AsyncOperation URL to poll, when the server started an operation. */
  operationUrl?: string;
}

// ---- errors ----

/** The server answered with an error status; carries the ARM error envelope. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: string;
  readonly target?: string;
  readonly details?: ErrorDetail[];
  constructor(
    readonly status: number,
    body: ErrorBody,
    readonly method: string,
    readonly url: string,
    readonly requestId?: string,
  ) {
    super(body.message);
    this.code = body.code;
    this.target = body.target;
    this.details = body.details;
  }

  /** The envelope as the server sent it: `{error:{code,message,target,details}}`. */
  toJSON(): { error: ErrorBody } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.target ? { target: this.target } : {}),
        ...(this.details?.length ? { details: this.details } : {}),
      },
    };
  }
}

/** The server could not be reached at all: DNS, refused connection, TLS trust, timeout. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly tls: boolean,
  ) {
    super(message);
  }
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** Turns a socket or TLS failure into a ConnectionError with a hint; exported for other transports (uploads). */
export function connectionError(err: NodeJS.ErrnoException, url: URL): ConnectionError {
  const where = url.origin;
  const code = err.code;
  if (code && TLS_CODES.has(code)) {
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new ConnectionError(
        `The certificate of ${where} is not valid for the name '${url.hostname}' (${code}). Use the host name the server was set up with, or add it to the server's TLS names.`,
        code,
        true,
      );
    }
    if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER') {
      return new ConnectionError(
        `The TLS handshake with ${where} failed (${code}). If the server runs without TLS (LABFORGE_TLS=0), use an http:// URL.`,
        code,
        true,
      );
    }
    return new ConnectionError(
      `The certificate of ${where} is not trusted (${code}). Pass the server's CA certificate with --ca-file (labforge serve prints its path), or set NODE_EXTRA_CA_CERTS.`,
      code,
      true,
    );
  }
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'nothing is listening there; check that `labforge serve` is running and the port is right',
    ENOTFOUND: 'the host name is unknown; check the spelling and DNS',
    EAI_AGAIN: 'the host name could not be resolved right now; check DNS',
    ETIMEDOUT: 'the connection timed out; check the address and any firewall',
    EHOSTUNREACH: 'the host is unreachable; check the network and any firewall',
    ENETUNREACH: 'the network is unreachable',
    ECONNRESET: 'the connection was closed by the other side; check that the URL scheme (https/http) is right',
  };
  const reason = (code && reasons[code]) ?? err.message;
  return new ConnectionError(`Cannot reach the labforge server at ${where}: ${reason}${code ? ` (${code})` : ''}.`, code, false);
}

// ---- the client ----

export interface ClientOptions {
  /** Base URL of the server, for example https://labforge.example.edu:8443 */
  baseUrl: string;
  token?: string;
  /** PEM file of a CA to trust in addition to the system's (labforge's own CA). */
  caFile?: string;
  /** Per-request timeout in milliseconds (default 60 s). */
  timeoutMs?: number;
  userAgent?: string;
}

export interface RawResponse<T = unknown> {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: T;
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
}

const seg = (s: string) => encodeURIComponent(s);
// Pages are capped so a server bug that keeps returning a nextLink cannot loop forever.
const MAX_PAGES = 10_000;

export class ApiClient {
  readonly baseUrl: string;
  private readonly base: URL;
  private readonly token?: string;
  private readonly ca?: string[];
  /** Connections kept open between requests (a factory run or a wait makes hundreds); idle ones never keep the process alive. */
  private agent: http.Agent | undefined;
  private readonly timeoutMs: number;
  private readonly userAgent: string;

  constructor(opts: ClientOptions) {
    let base: URL;
    try {
      base = new URL(opts.baseUrl);
    } catch {
      throw new TypeError(`'${opts.baseUrl}' is not a URL. Give the server address like https://labforge.example.edu:8443`);
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') {
      throw new TypeError(`'${opts.baseUrl}' is not an http:// or https:// URL.`);
    }
    this.base = base;
    this.baseUrl = base.href.replace(/\/+$/, '');
    this.token = opts.token;
    if (opts.caFile) {
      let pem: string;
      try {
        pem = readFileSync(opts.caFile, 'utf8');
      } catch (err) {
        throw new TypeError(`The CA file ${opts.caFile} cannot be read: ${(err as Error).message}`);
      }
      if (!pem.includes('-----BEGIN CERTIFICATE-----'))
        throw new TypeError(`The CA file ${opts.caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----).`);
      // Trust the file in addition to the system roots, so a public certificate keeps working too.
      this.ca = [...rootCertificates, pem];
    }
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.userAgent = opts.userAgent ?? 'labforge-client/0.1.0';
  }

  /** The CAs to trust for https (the system roots plus the CA file), when a CA file was given. */
  get caCertificates(): string[] | undefined {
    return this.ca;
  }

  /** Headers that authenticate a request made outside this client (uploads). */
  authHeaders(): Record<string, string> {
    return { 'user-agent': this.userAgent, ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) };
  }

  /** Builds an absolute URL from an API path and query. */
  url(path: string, query?: Record<string, string | undefined>): URL {
    const u = new URL(this.baseUrl + (path.startsWith('/') ? path : `/${path}`));
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, v);
    return u;
  }

  /** Sends one request; resolves for 2xx/3xx, throws ApiError for 4xx/5xx and ConnectionError when unreachable. */
  async request<T = unknown>(method: string, pathOrUrl: string | URL, opts: RequestOptions = {}): Promise<RawResponse<T>> {
    const url = pathOrUrl instanceof URL ? pathOrUrl : this.url(pathOrUrl, opts.query);
    if (pathOrUrl instanceof URL) for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body), 'utf8');
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.userAgent,
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
      ...opts.headers,
    };
    const isHttps = url.protocol === 'https:';
    const mod = isHttps ? https : http;
    this.agent ??= isHttps ? new https.Agent({ keepAlive: true, ...(this.ca ? { ca: this.ca } : {}) }) : new http.Agent({ keepAlive: true });
    const agent = this.agent;
    const send = () =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
        const req = mod.request(
          url,
          {
            method,
            headers,
            agent,
            ...(isHttps && this.ca ? { ca: this.ca } : {}),
            timeout: this.timeoutMs,
          },
          (r) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, text: Buffer.concat(chunks).toString('utf8') }));
            r.on('error', (err) => reject(connectionError(err, url)));
          },
        );
        req.on('timeout', () => {
          req.destroy(Object.assign(new Error(`no answer within ${Math.round(this.timeoutMs / 1000)} s`), { code: 'ETIMEDOUT' }));
        });
        req.on('error', (err: NodeJS.ErrnoException) => {
          // A kept connection the server closed while it was idle: the request never reached it, send it again.
          if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) reject(Object.assign(err, { stale: true }));
          else reject(connectionError(err, url));
        });
        req.end(payload);
      });
    let res: { status: number; headers: http.IncomingHttpHeaders; text: string };
    try {
      res = await send();
    } catch (err) {
      if (!(err as { stale?: boolean }).stale) throw err;
      res = await send().catch((again: NodeJS.ErrnoException & { stale?: boolean }) => {
        throw again.stale ? connectionError(again, url) : again;
      });
    }
    let body: unknown;
    if (res.text.trim() !== '') {
      try {
        body = JSON.parse(res.text);
      } catch {
        body = res.text;
      }
    }
    if (res.status >= 400) {
      const requestId = typeof res.headers['x-ms-request-id'] === 'string' ? res.headers['x-ms-request-id'] : undefined;
      const env = (body as { error?: Partial<ErrorBody> } | undefined)?.error;
      const armBody: ErrorBody =
        env && typeof env.message === 'string'
          ? { code: env.code ?? `Http${res.status}`, message: env.message, target: env.target, details: env.details }
          : {
              code: `Http${res.status}`,
              message: `The server answered HTTP ${res.status} without an error description${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}. Is ${this.base.origin} a labforge server?`,
            };
      throw new ApiError(res.status, armBody, method, url.href, requestId);
    }
    return { status: res.status, headers: res.headers, body: body as T };
  }

  private async json<T>(method: string, path: string, apiVersion: string | undefined, body?: unknown, headers?: Record<string, string>): Promise<T> {
    return (await this.request<T>(method, path, { query: apiVersion ? { 'api-version': apiVersion } : undefined, body, headers })).body;
  }

  /** GETs a list and follows nextLink to the end, returning every item. */
  async listAll<T>(path: string, query: Record<string, string | undefined>): Promise<T[]> {
    const items: T[] = [];
    let next: URL | undefined = this.url(path, query);
    for (let i = 0; next && i < MAX_PAGES; i++) {
      const res: RawResponse<{ value?: T[]; nextLink?: string }> = await this.request('GET', next);
      items.push(...(res.body?.value ?? []));
      next = res.body?.nextLink ? this.sameServer(res.body.nextLink) : undefined;
    }
    return items;
  }

  /**
   * Keeps paging on the server we were configured with: behind a proxy the
   * server may advertise another origin, and the token must never go elsewhere.
   */
  private sameServer(link: string): URL {
    const u = new URL(link, this.baseUrl);
    if (u.origin === this.base.origin) return u;
    return new URL(this.baseUrl + u.pathname + u.search);
  }

  // ---- identity and subscriptions ----

  whoami(): Promise<WhoAmI> {
    return this.json('GET', '/providers/Labforge.Core/whoami', undefined);
  }

  listSubscriptions(): Promise<Subscription[]> {
    return this.listAll('/subscriptions', { 'api-version': API_VERSION.subscriptions });
  }

  listLocations(sub: string): Promise<Location[]> {
    return this.listAll(`/subscriptions/${seg(sub)}/locations`, { 'api-version': API_VERSION.subscriptions });
  }

  // ---- resource groups ----

  private groupPath(sub: string, rg: string) {
    return `/subscriptions/${seg(sub)}/resourcegroups/${seg(rg)}`;
  }

  getResourceGroup(sub: string, rg: string): Promise<ResourceGroup> {
    return this.json('GET', this.groupPath(sub, rg), API_VERSION.resources);
  }

  putResourceGroup(sub: string, rg: string, body: ResourceGroupInput): Promise<ResourceGroup> {
    return this.json('PUT', this.groupPath(sub, rg), API_VERSION.resources, body);
  }

  // ---- galleries ----

  private galleryPath(sub: string, rg: string, gallery?: string) {
    const p = `/subscriptions/${seg(sub)}/resourceGroups/${seg(rg)}/providers/Microsoft.Compute/galleries`;
    return gallery === undefined ? p : `${p}/${seg(gallery)}`;
  }

  listGalleries(sub: string, rg?: string): Promise<Gallery[]> {
    const path = rg === undefined ? `/subscriptions/${seg(sub)}/providers/Microsoft.Compute/galleries` : this.galleryPath(sub, rg);
    return this.listAll(path, { 'api-version': API_VERSION.compute });
  }

  getGallery(sub: string, rg: string, gallery: string): Promise<Gallery> {
    return this.json('GET', this.galleryPath(sub, rg, gallery), API_VERSION.compute);
  }

  /** Creates or replaces a gallery; `onlyIfNew` refuses (412) when it already exists. */
  putGallery(sub: string, rg: string, gallery: string, body: GalleryInput, opts: { onlyIfNew?: boolean } = {}): Promise<Gallery> {
    return this.json('PUT', this.galleryPath(sub, rg, gallery), API_VERSION.compute, body, opts.onlyIfNew ? { 'if-none-match': '*' } : undefined);
  }

  /** Deletes a gallery; resolves false when there was nothing to delete. */
  async deleteGallery(sub: string, rg: string, gallery: string): Promise<boolean> {
    const r = await this.request('DELETE', this.galleryPath(sub, rg, gallery), { query: { 'api-version': API_VERSION.compute } });
    return r.status !== 204;
  }

  // ---- image definitions ----

  private imagePath(sub: string, rg: string, gallery: string, image?: string) {
    const p = `${this.galleryPath(sub, rg, gallery)}/images`;
    return image === undefined ? p : `${p}/${seg(image)}`;
  }

  listImages(sub: string, rg: string, gallery: string): Promise<GalleryImage[]> {
    return this.listAll(this.imagePath(sub, rg, gallery), { 'api-version': API_VERSION.compute });
  }

  getImage(sub: string, rg: string, gallery: string, image: string): Promise<GalleryImage> {
    return this.json('GET', this.imagePath(sub, rg, gallery, image), API_VERSION.compute);
  }

  putImage(sub: string, rg: string, gallery: string, image: string, body: GalleryImageInput, opts: { onlyIfNew?: boolean } = {}): Promise<GalleryImage> {
    return this.json('PUT', this.imagePath(sub, rg, gallery, image), API_VERSION.compute, body, opts.onlyIfNew ? { 'if-none-match': '*' } : undefined);
  }

  async deleteImage(sub: string, rg: string, gallery: string, image: string): Promise<boolean> {
    const r = await this.request('DELETE', this.imagePath(sub, rg, gallery, image), { query: { 'api-version': API_VERSION.compute } });
    return r.status !== 204;
  }

  // ---- image versions ----

  private versionPath(sub: string, rg: string, gallery: string, image: string, version?: string) {
    const p = `${this.imagePath(sub, rg, gallery, image)}/versions`;
    return version === undefined ? p : `${p}/${seg(version)}`;
  }

  listVersions(sub: string, rg: string, gallery: string, image: string, opts: { expandReplication?: boolean } = {}): Promise<ImageVersion[]> {
    return this.listAll(this.versionPath(sub, rg, gallery, image), {
      'api-version': API_VERSION.compute,
      $expand: opts.expandReplication ? 'ReplicationStatus' : undefined,
    });
  }

  /** Gets a version by name; `latest` resolves to the newest usable one. */
  async getVersion(
    sub: string,
    rg: string,
    gallery: string,
    image: string,
    version: string,
    opts: { expandReplication?: boolean } = {},
  ): Promise<ImageVersion> {
    const r = await this.request<ImageVersion>('GET', this.versionPath(sub, rg, gallery, image, version), {
      query: { 'api-version': API_VERSION.compute, $expand: opts.expandReplication ? 'ReplicationStatus' : undefined },
    });
    return r.body;
  }

  private async accepted<T>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
    apiVersion: string = API_VERSION.compute,
  ): Promise<Accepted<T>> {
    const r = await this.request<T>(method, path, { query: { 'api-version': apiVersion }, body, headers });
    const op = r.headers['azure-asyncoperation'];
    return { status: r.status, body: r.body, ...(typeof op === 'string' && op ? { operationUrl: op } : {}) };
  }

  /** Creates a version (201 plus an operation) or updates its publishing profile; `onlyIfNew` refuses (412) when it exists. */
  putVersion(
    sub: string,
    rg: string,
    gallery: string,
    image: string,
    version: string,
    body: ImageVersionInput,
    opts: { onlyIfNew?: boolean } = {},
  ): Promise<Accepted<ImageVersion>> {
    return this.accepted('PUT', this.versionPath(sub, rg, gallery, image, version), body, opts.onlyIfNew ? { 'if-none-match': '*' } : undefined);
  }

  /** Updates the publishing profile of a version; replication to new regions runs as an operation. */
  patchVersion(sub: string, rg: string, gallery: string, image: string, version: string, body: ImageVersionInput): Promise<Accepted<ImageVersion>> {
    return this.accepted('PATCH', this.versionPath(sub, rg, gallery, image, version), body);
  }

  /** Deletes a version; `deleted` is false when there was nothing to delete (204). */
  async deleteVersion(sub: string, rg: string, gallery: string, image: string, version: string): Promise<{ deleted: boolean; operationUrl?: string }> {
    const r = await this.accepted<unknown>('DELETE', this.versionPath(sub, rg, gallery, image, version));
    return { deleted: r.status !== 204, ...(r.operationUrl ? { operationUrl: r.operationUrl } : {}) };
  }

  // ---- virtual machines ----

  private vmPath(sub: string, rg?: string, name?: string) {
    const base = rg === undefined ? `/subscriptions/${seg(sub)}` : `/subscriptions/${seg(sub)}/resourceGroups/${seg(rg)}`;
    return `${base}/providers/Microsoft.Compute/virtualMachines${name === undefined ? '' : `/${seg(name)}`}`;
  }

  /** VMs of a resource group, or of the whole subscription without one (students get their own). */
  listVms(sub: string, rg?: string): Promise<VirtualMachine[]> {
    return this.listAll(this.vmPath(sub, rg), { 'api-version': API_VERSION.virtualMachines });
  }

  getVm(sub: string, rg: string, name: string): Promise<VirtualMachine> {
    return this.json('GET', this.vmPath(sub, rg, name), API_VERSION.virtualMachines);
  }

  /** Creates a VM (201 plus an operation that builds its disk and boots it). */
  putVm(sub: string, rg: string, name: string, body: VirtualMachineInput, opts: { onlyIfNew?: boolean } = {}): Promise<Accepted<VirtualMachine>> {
    return this.accepted('PUT', this.vmPath(sub, rg, name), body, opts.onlyIfNew ? { 'if-none-match': '*' } : undefined, API_VERSION.virtualMachines);
  }

  /** Replaces a VM's tags (PATCH; the VM is not touched otherwise). */
  async patchVmTags(sub: string, rg: string, name: string, tags: Record<string, string>): Promise<VirtualMachine> {
    return (await this.accepted<VirtualMachine>('PATCH', this.vmPath(sub, rg, name), { tags }, undefined, API_VERSION.virtualMachines)).body;
  }

  async deleteVm(sub: string, rg: string, name: string): Promise<boolean> {
    const r = await this.accepted<unknown>('DELETE', this.vmPath(sub, rg, name), undefined, undefined, API_VERSION.virtualMachines);
    return r.status !== 204;
  }

  /** start, powerOff, restart, reimage, redeploy: 202 plus an operation. */
  vmAction(sub: string, rg: string, name: string, action: 'start' | 'powerOff' | 'restart' | 'reimage' | 'redeploy'): Promise<Accepted<unknown>> {
    return this.accepted('POST', `${this.vmPath(sub, rg, name)}/${action}`, undefined, undefined, API_VERSION.virtualMachines);
  }

  async generalizeVm(sub: string, rg: string, name: string): Promise<void> {
    await this.request('POST', `${this.vmPath(sub, rg, name)}/generalize`, { query: { 'api-version': API_VERSION.virtualMachines } });
  }

  /** A one-minute ticket for the VM's console WebSockets. */
  vmConsole(sub: string, rg: string, name: string): Promise<ConsoleUrls> {
    return this.json('POST', `${this.vmPath(sub, rg, name)}/console`, API_VERSION.virtualMachines);
  }

  // ---- people: accounts and sign-in ----

  async signIn(email: string, password: string): Promise<Session> {
    return this.json('POST', '/providers/Labforge.Core/signIn', API_VERSION.labforge, { email, password });
  }

  async register(body: { email: string; password: string; invitation?: string; registrationCode?: string }): Promise<Session> {
    return this.json('POST', '/providers/Labforge.Core/register', API_VERSION.labforge, body);
  }

  async signOut(): Promise<void> {
    await this.request('POST', '/providers/Labforge.Core/signOut', { query: { 'api-version': API_VERSION.labforge } });
  }

  async listAccounts(): Promise<Account[]> {
    return (await this.json<{ value: Account[] }>('GET', '/providers/Labforge.Core/accounts', API_VERSION.labforge)).value;
  }

  putAccount(email: string, properties: { role?: string; displayName?: string; password?: string }): Promise<AccountWithInvitation> {
    return this.json('PUT', `/providers/Labforge.Core/accounts/${seg(email)}`, API_VERSION.labforge, { properties });
  }

  async deleteAccount(email: string): Promise<boolean> {
    return (await this.request('DELETE', `/providers/Labforge.Core/accounts/${seg(email)}`, { query: { 'api-version': API_VERSION.labforge } })).status !== 204;
  }

  // ---- Lab Services ----

  private lsPath(sub: string, rg: string | undefined, rest = '') {
    const base = rg === undefined ? `/subscriptions/${seg(sub)}` : `/subscriptions/${seg(sub)}/resourceGroups/${seg(rg)}`;
    return `${base}/providers/Microsoft.LabServices${rest}`;
  }

  private ls<T>(method: string, path: string, body?: unknown, query: Record<string, string | undefined> = {}): Promise<Accepted<T>> {
    return this.request<T>(method, path, { query: { 'api-version': API_VERSION.labServices, ...query }, body }).then((r) => {
      const op = r.headers['azure-asyncoperation'];
      return { status: r.status, body: r.body, ...(typeof op === 'string' && op ? { operationUrl: op } : {}) };
    });
  }

  listLabPlans(sub: string, rg?: string): Promise<LabPlan[]> {
    return this.listAll(this.lsPath(sub, rg, '/labPlans'), { 'api-version': API_VERSION.labServices });
  }

  async getLabPlan(sub: string, rg: string, name: string): Promise<LabPlan> {
    return (await this.ls<LabPlan>('GET', this.lsPath(sub, rg, `/labPlans/${seg(name)}`))).body;
  }

  async putLabPlan(sub: string, rg: string, name: string, body: LabPlanInput, method: 'PUT' | 'PATCH' = 'PUT'): Promise<LabPlan> {
    return (await this.ls<LabPlan>(method, this.lsPath(sub, rg, `/labPlans/${seg(name)}`), body)).body;
  }

  async deleteLabPlan(sub: string, rg: string, name: string): Promise<boolean> {
    return (await this.ls('DELETE', this.lsPath(sub, rg, `/labPlans/${seg(name)}`))).status !== 204;
  }

  async listPlanImages(sub: string, rg: string, plan: string, includeHidden = false): Promise<LabPlanImage[]> {
    const r = await this.ls<{ value: LabPlanImage[] }>('GET', this.lsPath(sub, rg, `/labPlans/${seg(plan)}/images`), undefined, {
      includeHidden: includeHidden ? 'true' : undefined,
    });
    return r.body.value;
  }

  async setPlanImage(sub: string, rg: string, plan: string, image: string, enabledState: 'Enabled' | 'Disabled'): Promise<LabPlanImage> {
    return (await this.ls<LabPlanImage>('PATCH', this.lsPath(sub, rg, `/labPlans/${seg(plan)}/images/${seg(image)}`), { properties: { enabledState } })).body;
  }

  saveImage(sub: string, rg: string, plan: string, body: SaveImageInput): Promise<Accepted<SavedImage>> {
    return this.ls<SavedImage>('POST', this.lsPath(sub, rg, `/labPlans/${seg(plan)}/saveImage`), body);
  }

  listLabs(sub: string, rg?: string): Promise<Lab[]> {
    return this.listAll(this.lsPath(sub, rg, '/labs'), { 'api-version': API_VERSION.labServices });
  }

  async getLab(sub: string, rg: string, name: string): Promise<Lab> {
    return (await this.ls<Lab>('GET', this.lsPath(sub, rg, `/labs/${seg(name)}`))).body;
  }

  putLab(sub: string, rg: string, name: string, body: LabInput, method: 'PUT' | 'PATCH' = 'PUT'): Promise<Accepted<Lab>> {
    return this.ls<Lab>(method, this.lsPath(sub, rg, `/labs/${seg(name)}`), body);
  }

  async deleteLab(sub: string, rg: string, name: string): Promise<boolean> {
    return (await this.ls('DELETE', this.lsPath(sub, rg, `/labs/${seg(name)}`))).status !== 204;
  }

  publishLab(sub: string, rg: string, name: string): Promise<Accepted<unknown>> {
    return this.ls('POST', this.lsPath(sub, rg, `/labs/${seg(name)}/publish`));
  }

  async listLabVms(sub: string, rg: string, lab: string): Promise<LabVm[]> {
    return (await this.ls<{ value: LabVm[] }>('GET', this.lsPath(sub, rg, `/labs/${seg(lab)}/virtualMachines`))).body.value;
  }

  async getLabVm(sub: string, rg: string, lab: string, vm: string): Promise<LabVm> {
    return (await this.ls<LabVm>('GET', this.lsPath(sub, rg, `/labs/${seg(lab)}/virtualMachines/${seg(vm)}`))).body;
  }

  labVmAction(sub: string, rg: string, lab: string, vm: string, action: 'start' | 'stop' | 'reimage' | 'redeploy'): Promise<Accepted<unknown>> {
    return this.ls('POST', this.lsPath(sub, rg, `/labs/${seg(lab)}/virtualMachines/${seg(vm)}/${action}`));
  }

  async labVmConsole(sub: string, rg: string, lab: string, vm: string): Promise<ConsoleUrls> {
    return (await this.ls<ConsoleUrls>('POST', this.lsPath(sub, rg, `/labs/${seg(lab)}/virtualMachines/${seg(vm)}/console`))).body;
  }

  async listLabUsers(sub: string, rg: string, lab: string): Promise<LabUser[]> {
    return (await this.ls<{ value: LabUser[] }>('GET', this.lsPath(sub, rg, `/labs/${seg(lab)}/users`))).body.value;
  }

  async putLabUser(sub: string, rg: string, lab: string, name: string, email: string): Promise<LabUser> {
    return (await this.ls<LabUser>('PUT', this.lsPath(sub, rg, `/labs/${seg(lab)}/users/${seg(name)}`), { properties: { email } })).body;
  }

  async inviteLabUser(sub: string, rg: string, lab: string, name: string): Promise<InvitedLabUser> {
    return (await this.ls<InvitedLabUser>('POST', this.lsPath(sub, rg, `/labs/${seg(lab)}/users/${seg(name)}/invite`), {})).body;
  }

  // ---- operations ----

  private operationPath(sub: string, id?: string) {
    const p = `/subscriptions/${seg(sub)}/providers/Labforge.Core/operations`;
    return id === undefined ? p : `${p}/${seg(id)}`;
  }

  /** Status of an operation plus the Retry-After the server suggests (seconds). */
  async getOperationWithRetry(sub: string, id: string): Promise<{ operation: Operation; retryAfterSeconds?: number }> {
    const r = await this.request<Operation>('GET', this.operationPath(sub, id), { query: { 'api-version': API_VERSION.labforge } });
    const ra = Number(r.headers['retry-after']);
    return { operation: r.body, retryAfterSeconds: Number.isFinite(ra) && ra >= 0 ? ra : undefined };
  }

  async getOperation(sub: string, id: string): Promise<Operation> {
    return (await this.getOperationWithRetry(sub, id)).operation;
  }

  /** Recent operations, newest first; `top` limits how many are fetched in all. */
  async listOperations(sub: string, opts: { state?: OperationStatus; top?: number } = {}): Promise<Operation[]> {
    if (opts.top !== undefined) {
      const r = await this.request<{ value: Operation[] }>('GET', this.operationPath(sub), {
        query: { 'api-version': API_VERSION.labforge, state: opts.state, $top: String(opts.top) },
      });
      return r.body.value;
    }
    return this.listAll(this.operationPath(sub), { 'api-version': API_VERSION.labforge, state: opts.state });
  }

  cancelOperation(sub: string, id: string): Promise<Operation> {
    return this.json('POST', `${this.operationPath(sub, id)}/cancel`, API_VERSION.labforge);
  }

  // ---- hosts (staff) ----

  listHosts(): Promise<Host[]> {
    return this.listAll('/providers/Labforge.Core/hosts', { 'api-version': API_VERSION.labforge });
  }

  getHost(name: string): Promise<Host> {
    return this.json('GET', `/providers/Labforge.Core/hosts/${seg(name)}`, API_VERSION.labforge);
  }

  checkHostAcceleration(name: string): Promise<Host> {
    return this.json('POST', `/providers/Labforge.Core/hosts/${seg(name)}/checkAcceleration`, API_VERSION.labforge);
  }

  // ---- tokens (admin only) ----

  listTokens(): Promise<Token[]> {
    return this.listAll('/providers/Labforge.Core/tokens', { 'api-version': API_VERSION.labforge });
  }

  createToken(input: TokenInput): Promise<CreatedToken> {
    return this.json('POST', '/providers/Labforge.Core/tokens', API_VERSION.labforge, input);
  }

  revokeToken(id: string): Promise<Token> {
    return this.json('DELETE', `/providers/Labforge.Core/tokens/${seg(id)}`, API_VERSION.labforge);
  }
}

/**
 * Reads an operation reference as users paste it: a bare id, the ARM id
 * (/subscriptions/…/operations/ID) or the full Azure-AsyncOperation URL.
 */
export function parseOperationRef(ref: string): { subscription?: string; id: string } {
  const trimmed = ref.trim();
  const m = /\/subscriptions\/([^/?#]+)\/providers\/Labforge\.Core\/operations\/([^/?#]+)/i.exec(trimmed);
  if (m) return { subscription: decodeURIComponent(m[1] as string), id: decodeURIComponent(m[2] as string) };
  return { id: trimmed };
}
