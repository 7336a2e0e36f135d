// The portal's side of the API: fetch with the session token kept in this
// browser tab (sessionStorage, never in a URL), ARM errors turned into
// exceptions with the server's message, and operations polled to the end.
// The shapes are the ones the command-line client uses.
import type { Host, Lab, LabVm, Operation, SessionInfo } from '../../src/client/api-client.js';
import i18n from './i18n.js';

export type { Host, Lab, LabVm, Operation };

export const VERSIONS = { labforge: '2026-11-01', labServices: '2022-08-01', compute: '2025-03-03', subscriptions: '2022-12-01' } as const;
const TOKEN_KEY = 'labforge.session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

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
    if (res.status === 401 && path !== '/providers/Labforge.Core/signIn') session.clear();
    throw new ApiError(res.status, e?.code ?? `Http${res.status}`, e?.message ?? `HTTP ${res.status}`);
  }
  return { body: parsed as T, headers: res.headers, status: res.status };
}

export async function signIn(email: string, password: string): Promise<SessionInfo> {
  const r = await call<SessionInfo>('POST', '/providers/Labforge.Core/signIn', VERSIONS.labforge, { email, password });
  session.set(r.body.token);
  return r.body;
}

export interface Me {
  subject: string;
  role: 'admin' | 'creator' | 'user';
}

export const whoami = async () => (await call<Me>('GET', '/providers/Labforge.Core/whoami', VERSIONS.labforge)).body;

export async function signOut(): Promise<void> {
  await call('POST', '/providers/Labforge.Core/signOut', VERSIONS.labforge).catch(() => undefined);
  session.clear();
}

export async function subscription(): Promise<string> {
  const r = await call<{ value: { subscriptionId: string }[] }>('GET', '/subscriptions', VERSIONS.subscriptions);
  const sub = r.body.value[0]?.subscriptionId;
  if (!sub) throw new ApiError(404, 'NoSubscription', i18n.t('errors.noSubscription'));
  return sub;
}

export const listLabs = async (sub: string) =>
  (await call<{ value: Lab[] }>('GET', `/subscriptions/${sub}/providers/Microsoft.LabServices/labs`, VERSIONS.labServices)).body.value;

/** A lab VM with the lab it belongs to. */
export interface MyVm extends LabVm {
  lab: Lab;
}

export async function myVms(sub: string): Promise<MyVm[]> {
  const out: MyVm[] = [];
  for (const lab of await listLabs(sub)) {
    const vms = (await call<{ value: LabVm[] }>('GET', `${lab.id}/virtualMachines`, VERSIONS.labServices)).body.value;
    for (const vm of vms) if (vm.properties.vmType === 'User') out.push({ ...vm, lab });
  }
  return out;
}

/** Starts a long-running action and resolves with the operation once it ended. */
export async function runOperation(method: string, path: string, apiVersion: string, body?: unknown): Promise<Operation> {
  const r = await call('POST' === method ? 'POST' : method, path, apiVersion, body);
  const url = r.headers.get('azure-asyncoperation');
  if (!url) throw new ApiError(500, 'NoOperation', i18n.t('errors.noOperation'));
  const u = new URL(url, location.origin);
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    const op = (await call<Operation>('GET', `${u.pathname}`, VERSIONS.labforge)).body;
    if (op.status !== 'InProgress') return op;
    if (Date.now() > deadline) throw new ApiError(504, 'StillRunning', i18n.t('errors.stillRunning'));
    await new Promise((res) => setTimeout(res, 1000));
  }
}

export interface Gallery {
  id: string;
  name: string;
  location: string;
  properties: { description?: string };
}

export const listGalleries = async (sub: string) =>
  (await call<{ value: Gallery[] }>('GET', `/subscriptions/${sub}/providers/Microsoft.Compute/galleries`, VERSIONS.compute)).body.value;

export const getLab = async (id: string) => (await call<Lab>('GET', id, VERSIONS.labServices)).body;
export const labVms = async (labId: string) => (await call<{ value: LabVm[] }>('GET', `${labId}/virtualMachines`, VERSIONS.labServices)).body.value;

/** Starts an export of a lab VM to the lab plan's gallery; returns the operation URL and what it will make. */
export async function saveImage(labPlanId: string, body: { name?: string; labVirtualMachineId: string; updateExisting?: boolean }) {
  const r = await call<{ imageId: string; version: string }>('POST', `${labPlanId}/saveImage`, VERSIONS.labServices, body);
  return { ...r.body, operationUrl: r.headers.get('azure-asyncoperation') as string };
}

/** Polls an operation URL until it ends, reporting its percent. */
export async function follow(operationUrl: string, onProgress: (percent: number) => void): Promise<Operation> {
  const u = new URL(operationUrl, location.origin);
  for (let i = 0; ; i++) {
    const op = (await call<Operation>('GET', u.pathname, VERSIONS.labforge)).body;
    onProgress(op.percentComplete ?? 0);
    if (op.status !== 'InProgress') return op;
    if (i > 3600) throw new ApiError(504, 'StillRunning', i18n.t('errors.stillRunning'));
    await new Promise((res) => setTimeout(res, 1000));
  }
}

export interface LabPlan {
  id: string;
  name: string;
  location: string;
  properties: { sharedGalleryId?: string; allowedRegions?: string[] };
}

export interface PlanImage {
  id: string;
  name: string;
  properties: {
    enabledState: 'Enabled' | 'Disabled';
    osType?: string;
    osState?: string;
    version?: string;
    osDiskSizeGB?: number;
    availableRegions?: string[];
    builtin?: boolean;
    hiddenReasons?: string[];
  };
}

export const listLabPlans = async (sub: string) =>
  (await call<{ value: LabPlan[] }>('GET', `/subscriptions/${sub}/providers/Microsoft.LabServices/labPlans`, VERSIONS.labServices)).body.value;

export const planImages = async (planId: string, includeHidden = false) =>
  (await call<{ value: PlanImage[] }>('GET', `${planId}/images${includeHidden ? '?includeHidden=true' : ''}`, VERSIONS.labServices)).body.value;

export const setImageEnabled = async (imageId: string, enabled: boolean) =>
  (await call<PlanImage>('PATCH', imageId, VERSIONS.labServices, { properties: { enabledState: enabled ? 'Enabled' : 'Disabled' } })).body;

export const setPlanGallery = async (planId: string, galleryId: string | null) =>
  (await call<LabPlan>('PATCH', planId, VERSIONS.labServices, { properties: { sharedGalleryId: galleryId } })).body;

/** Creates a lab and follows its operation (the template VM is built and started). */
export async function createLab(labId: string, body: unknown, onProgress: (percent: number) => void): Promise<Operation> {
  const r = await call<Lab>('PUT', labId, VERSIONS.labServices, body);
  const url = r.headers.get('azure-asyncoperation');
  if (!url) throw new ApiError(500, 'NoOperation', i18n.t('errors.noOperation'));
  return follow(url, onProgress);
}

export interface OperationRow {
  name: string;
  status: string;
  percentComplete?: number;
  startTime?: string;
  endTime?: string;
  error?: { code: string; message: string };
  properties: { kind: string; resourceId: string; statusMessage?: string };
}

export const listOperations = async (sub: string) =>
  (await call<{ value: OperationRow[] }>('GET', `/subscriptions/${sub}/providers/Labforge.Core/operations?$top=50`, VERSIONS.labforge)).body.value;

export const listResourceGroups = async (sub: string) =>
  (await call<{ value: { name: string; location: string }[] }>('GET', `/subscriptions/${sub}/resourcegroups`, '2021-04-01')).body.value;

export interface ConsoleUrls {
  expiresAt: string;
  vncUrl: string;
  serialUrl: string;
}

/** One-minute WebSocket URLs of a VM's console (a lab VM's id). */
export const consoleUrls = async (vmId: string) => (await call<ConsoleUrls>('POST', `${vmId}/console`, VERSIONS.labServices)).body;

export interface LabUserRow {
  id: string;
  name: string;
  properties: { email: string; registrationState?: string; invitationState?: string; totalUsage?: string };
  registrationCode?: string;
}

export const labUsers = async (labId: string) => (await call<{ value: LabUserRow[] }>('GET', `${labId}/users`, VERSIONS.labServices)).body.value;
export const addLabUser = async (labId: string, name: string, email: string) =>
  (await call<LabUserRow>('PUT', `${labId}/users/${encodeURIComponent(name)}`, VERSIONS.labServices, { properties: { email } })).body;
export const inviteLabUser = async (userId: string) => (await call<LabUserRow>('POST', `${userId}/invite`, VERSIONS.labServices, {})).body;

/** Changes the number of student VMs; a published lab is rescaled by an operation (followed here). */
export async function setCapacity(labId: string, capacity: number): Promise<void> {
  const r = await call<Lab>('PATCH', labId, VERSIONS.labServices, { properties: { virtualMachineProfile: { sku: { capacity } } } });
  const url = r.headers.get('azure-asyncoperation');
  if (url) await follow(url, () => {});
}

export interface ImageDef {
  id: string;
  name: string;
  properties: { osType: string; osState: string; hyperVGeneration?: string; description?: string };
}

export interface Version {
  id: string;
  name: string;
  properties: {
    provisioningState: string;
    publishingProfile: { excludeFromLatest?: boolean; targetRegions?: { name: string }[] };
    storageProfile: { osDiskImage?: { sizeInGB?: number }; dataDiskImages?: unknown[] };
    replicationStatus?: { aggregatedState: string; summary: { region: string; state: string; progress: number; details?: string }[] };
    usedBy?: string[];
  };
}

export interface UsageRow {
  region: string;
  gallery: string | null;
  image: string | null;
  version: string | null;
  storedBytes: number;
  uniqueBytes: number;
  monthlyCost: number;
}

export const listImageDefs = async (galleryId: string) => (await call<{ value: ImageDef[] }>('GET', `${galleryId}/images`, VERSIONS.compute)).body.value;
export const listVersions = async (imageId: string) =>
  (await call<{ value: Version[] }>('GET', `${imageId}/versions?$expand=ReplicationStatus`, VERSIONS.compute)).body.value;
export const setExcludeFromLatest = async (versionId: string, exclude: boolean) =>
  (await call<Version>('PATCH', versionId, VERSIONS.compute, { properties: { publishingProfile: { excludeFromLatest: exclude } } })).body;
export const deleteVersion = async (versionId: string) => call('DELETE', versionId, VERSIONS.compute);
export const usage = async (sub: string) =>
  (await call<{ versions: UsageRow[]; pricePerGiBMonth: number }>('GET', `/subscriptions/${sub}/providers/Labforge.Core/imageStores/usage`, VERSIONS.labforge))
    .body;

export interface PersonRow {
  name: string;
  properties: { email: string; role: string; state: string; lastSignInAt?: string; displayName?: string };
}
export interface TokenRow {
  id: string;
  name: string;
  properties: { displayName: string; subject: string; role: string; state: string; lastUsedAt?: string | null };
}

export const listPeople = async () => (await call<{ value: PersonRow[] }>('GET', '/providers/Labforge.Core/accounts', VERSIONS.labforge)).body.value;
export const createPerson = async (email: string, role: string) =>
  (
    await call<PersonRow & { invitation?: { token: string; expiresAt: string } }>(
      'PUT',
      `/providers/Labforge.Core/accounts/${encodeURIComponent(email)}`,
      VERSIONS.labforge,
      { properties: { role } },
    )
  ).body;
export const listTokens = async () => (await call<{ value: TokenRow[] }>('GET', '/providers/Labforge.Core/tokens', VERSIONS.labforge)).body.value;
export const revokeToken = async (id: string) => call('DELETE', `/providers/Labforge.Core/tokens/${id}`, VERSIONS.labforge);

export const listHosts = async () => (await call<{ value: Host[] }>('GET', '/providers/Labforge.Core/hosts', VERSIONS.labforge)).body.value;
export const checkHost = async (name: string) =>
  (await call<Host>('POST', `/providers/Labforge.Core/hosts/${encodeURIComponent(name)}/checkAcceleration`, VERSIONS.labforge)).body;
