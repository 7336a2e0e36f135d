// Who may do what, route by route: every route that reads or changes a lab, a
// VM, a gallery, an upload, an account, a token or an operation, called by
// each of seven callers, and the exact status each gets. The table is the
// product's access rules (docs/SECURITY.md has the same table in words):
//
//   admin      an admin's API token
//   creatorA   the creator of lab `physics` (and of the Compute VM `desk`, the upload, the operations)
//   creatorB   another creator (their own lab `chemistry`)
//   studentA   physics's student (registered with the lab's code: a session), seat 0, owner of `desk`
//   studentB   chemistry's student (a session too)
//   anonymous  no token
//   revoked    an admin's API token, revoked
//
// 404: the resource must look non-existent to the caller (another student's
// VM, a lab one is not in); 403: the caller may see it (or the route is not
// for their role) but may not do this; 409: nobody does this here (a lab's VM
// changed or deleted as a Compute VM). A DELETE of something the caller cannot
// see answers 204, as for a resource that does not exist.
//
// Cells do not depend on one another: a row that deletes, publishes or
// generalizes gets a fresh resource for each cell, a row that needs a VM
// running or stopped puts it so first, and each cell waits for the operation
// it started.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../helpers/fake-compute.js';
import { LS } from '../helpers/labs.js';
import { DIALECTS } from '../helpers/pg.js';
import { COMPUTE, LABFORGE, RESOURCES, startTestServer, type TestResponse, type TestServer, waitForOperation } from '../helpers/server.js';

const VMS = 'api-version=2024-07-01';
const ROLES = ['admin', 'creatorA', 'creatorB', 'studentA', 'studentB', 'anonymous', 'revoked'] as const;
type Role = (typeof ROLES)[number];
type Vars = Record<string, string>;
type Fresh = 'lab' | 'labUser' | 'schedule' | 'vm' | 'stoppedVm' | 'gallery' | 'image' | 'version' | 'upload' | 'account' | 'token' | 'name' | 'versionName';

interface Row {
  /** 'METHOD path'; {name} is a fixture value, {new} the cell's fresh resource. */
  req: string;
  /** The seven statuses, in the order of ROLES. */
  expect: number[];
  body?: unknown | ((v: Vars) => unknown);
  headers?: Record<string, string>;
  /** A fresh resource for each cell (its name is {new}). */
  fresh?: Fresh;
  /** Before each cell: the VM at this fixture path is put in this state. */
  state?: [string, 'Running' | 'Stopped'];
  /** For lists: whether the answer of each of the first five callers names this resource ('y', 'n', '-' when refused; {name} for a fixture value). */
  sees?: Array<[string, string]>;
}

const row = (statuses: string, req: string, opts: Omit<Row, 'req' | 'expect'> = {}): Row => ({ req, expect: statuses.split(/\s+/).map(Number), ...opts });
const TUS = { 'tus-resumable': '1.0.0' };
const scheduleBody = { properties: { startAt: '2027-03-01T07:00:00Z', stopAt: '2027-03-01T09:00:00Z', timeZoneId: 'Europe/Berlin' } };
const labBody = (v: Vars, createOption = 'TemplateVM', capacity = 2) => ({
  location: 'site-a',
  properties: {
    labPlanId: v.planId,
    title: 'Physics 101',
    virtualMachineProfile: {
      createOption,
      imageReference: { id: `${v.planId}/images/course` },
      sku: { name: 'Standard_B1s', capacity },
      usageQuota: 'PT10H',
      adminUser: { username: 'teacher', password: 'Classroom-2026' },
    },
  },
});
const vmBody = (v: Vars) => ({
  location: 'site-a',
  properties: {
    owner: 'kim@school.edu',
    storageProfile: { imageReference: { id: v.imageId } },
    osProfile: { adminUsername: 'teacher', adminPassword: 'Classroom-2026' },
  },
});

// Each row: the status of each caller (admin, creatorA, creatorB, studentA, studentB, anonymous, revoked), the request.
const ROWS: Row[] = [
  //   adm crA crB stA stB ano rev
  // ---- labs ----
  row('200 200 200 200 200 401 401', 'GET /subscriptions/{sub}/providers/Microsoft.LabServices/labs?{LS}', {
    sees: [
      ['physics', 'y y y y n'],
      ['chemistry', 'y y y n y'],
    ],
  }),
  row('200 200 200 200 200 401 401', 'GET {rg}/providers/Microsoft.LabServices/labs?{LS}', { sees: [['physics', 'y y y y n']] }),
  row('200 200 200 200 404 401 401', 'GET {lab}?{LS}'),
  row('200 200 403 403 403 401 401', 'PUT {lab}?{LS}', { body: (v) => labBody(v) }),
  row('201 201 201 403 403 401 401', 'PUT {labs}/{new}?{LS}', { fresh: 'name', body: (v) => labBody(v, 'Image', 0) }),
  row('200 200 403 403 403 401 401', 'PATCH {lab}?{LS}', { body: { properties: { title: 'Physics 101' } } }),
  row('202 202 403 403 403 401 401', 'POST {labs}/{new}/publish?{LS}', { fresh: 'lab' }),
  row('200 200 403 403 403 401 401', 'DELETE {labs}/{new}?{LS}', { fresh: 'lab' }),
  // ---- a lab's VMs (seat 0 is studentA's, seat 1 free, the template creatorA's) ----
  row('200 200 200 200 404 401 401', 'GET {lab}/virtualMachines?{LS}', {
    sees: [
      ['0', 'y y y y -'],
      ['1', 'y y y n -'],
      ['template', 'y y y n -'],
    ],
  }),
  row('200 200 200 200 404 401 401', 'GET {lab}/virtualMachines/0?{LS}'),
  row('200 200 200 404 404 401 401', 'GET {lab}/virtualMachines/1?{LS}'),
  row('200 200 200 404 404 401 401', 'GET {lab}/virtualMachines/template?{LS}'),
  row('202 202 403 202 404 401 401', 'POST {lab}/virtualMachines/0/start?{LS}', { state: ['seat', 'Stopped'] }),
  row('202 202 403 202 404 401 401', 'POST {lab}/virtualMachines/0/stop?{LS}', { state: ['seat', 'Running'] }),
  row('202 202 403 202 404 401 401', 'POST {lab}/virtualMachines/0/reimage?{LS}'),
  row('202 202 403 202 404 401 401', 'POST {lab}/virtualMachines/0/redeploy?{LS}'),
  row('202 202 403 404 404 401 401', 'POST {lab}/virtualMachines/1/start?{LS}', { state: ['seat1', 'Stopped'] }),
  row('202 202 403 404 404 401 401', 'POST {lab}/virtualMachines/template/stop?{LS}', { state: ['template', 'Running'] }),
  row('200 200 403 200 404 401 401', 'POST {lab}/virtualMachines/0/resetPassword?{LS}', {
    state: ['seat', 'Stopped'],
    body: { username: 'teacher', password: 'Another-Pass-42' },
  }),
  row('200 200 403 200 404 401 401', 'POST {lab}/virtualMachines/0/console?{LS}', { state: ['seat', 'Running'] }),
  // ---- a lab's users ----
  row('200 200 200 200 404 401 401', 'GET {lab}/users?{LS}', { sees: [['kim', 'y y y y -']] }),
  row('200 200 200 200 404 401 401', 'GET {lab}/users/kim?{LS}'),
  row('200 200 403 403 403 401 401', 'PUT {lab}/users/kim?{LS}', { body: { properties: { additionalUsageQuota: 'PT1H' } } }),
  row('200 200 403 403 403 401 401', 'PATCH {lab}/users/kim?{LS}', { body: { properties: { additionalUsageQuota: 'PT2H' } } }),
  row('201 201 403 403 403 401 401', 'PUT {lab}/users/{new}?{LS}', { fresh: 'name', body: (v) => ({ properties: { email: `${v.new}@school.edu` } }) }),
  row('200 200 403 403 403 401 401', 'DELETE {lab}/users/{new}?{LS}', { fresh: 'labUser' }),
  row('200 200 403 403 403 401 401', 'POST {lab}/users/kim/invite?{LS}', { body: {} }),
  // ---- a lab's schedules ----
  row('200 200 200 403 403 401 401', 'GET {lab}/schedules?{LS}', { sees: [['weekly', 'y y y - -']] }),
  row('200 200 200 403 403 401 401', 'GET {lab}/schedules/weekly?{LS}'),
  row('200 200 403 403 403 401 401', 'PUT {lab}/schedules/weekly?{LS}', { body: scheduleBody }),
  row('200 200 403 403 403 401 401', 'PATCH {lab}/schedules/weekly?{LS}', { body: { properties: { notes: 'Bring headphones' } } }),
  row('201 201 403 403 403 401 401', 'PUT {lab}/schedules/{new}?{LS}', { fresh: 'name', body: scheduleBody }),
  row('200 200 403 403 403 401 401', 'DELETE {lab}/schedules/{new}?{LS}', { fresh: 'schedule' }),
  // ---- lab plans ----
  row('200 200 200 403 403 401 401', 'GET {plan}?{LS}'),
  row('200 200 200 403 403 401 401', 'GET {plan}/images?{LS}', { sees: [['course', 'y y y - -']] }),
  row('200 403 403 403 403 401 401', 'PATCH {plan}?{LS}', { body: { properties: {} } }),
  row('200 403 403 403 403 401 401', 'PATCH {plan}/images/course?{LS}', { body: { properties: { enabledState: 'Enabled' } } }),
  // ---- Compute VMs (desk: made by creatorA for studentA) ----
  row('200 200 200 200 200 401 401', 'GET /subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines?{VMS}', { sees: [['desk', 'y y y y n']] }),
  row('200 200 200 200 200 401 401', 'GET {vms}?{VMS}', { sees: [['desk', 'y y y y n']] }),
  row('200 200 200 200 404 401 401', 'GET {vms}/desk?{VMS}'),
  row('200 200 200 200 404 401 401', 'GET {vms}/desk/instanceView?{VMS}'),
  row('200 200 200 403 403 401 401', 'PUT {vms}/desk?{VMS}', { body: { location: 'site-a', tags: { course: 'cs101' } } }),
  row('200 200 200 403 403 401 401', 'PATCH {vms}/desk?{VMS}', { body: { tags: { course: 'cs102' } } }),
  row('201 201 201 403 403 401 401', 'PUT {vms}/{new}?{VMS}', { fresh: 'name', body: vmBody }),
  row('200 200 200 403 204 401 401', 'DELETE {vms}/{new}?{VMS}', { fresh: 'vm' }),
  row('202 202 202 202 404 401 401', 'POST {vms}/desk/start?{VMS}', { state: ['desk', 'Stopped'] }),
  row('202 202 202 202 404 401 401', 'POST {vms}/desk/powerOff?{VMS}', { state: ['desk', 'Running'] }),
  row('202 202 202 202 404 401 401', 'POST {vms}/desk/deallocate?{VMS}', { state: ['desk', 'Running'] }),
  row('202 202 202 202 404 401 401', 'POST {vms}/desk/restart?{VMS}'),
  row('202 202 202 202 404 401 401', 'POST {vms}/desk/reimage?{VMS}'),
  row('202 202 202 202 404 401 401', 'POST {vms}/desk/redeploy?{VMS}'),
  row('200 200 200 403 403 401 401', 'POST {vms}/{new}/generalize?{VMS}', { fresh: 'stoppedVm' }),
  row('200 200 200 200 404 401 401', 'POST {vms}/desk/console?{VMS}', { state: ['desk', 'Running'] }),
  // ---- a lab's VM through the Compute API (labs/physics/0, studentA's seat) ----
  row('200 200 200 200 404 401 401', 'GET {seat}?{VMS}'),
  row('200 200 200 200 404 401 401', 'GET {seat}/instanceView?{VMS}'),
  row('409 409 409 403 403 401 401', 'PUT {seat}?{VMS}', { body: { location: 'site-a', tags: { x: 'y' } } }),
  row('409 409 409 403 403 401 401', 'PATCH {seat}?{VMS}', { body: { tags: { x: 'y' } } }),
  row('409 409 409 403 204 401 401', 'DELETE {seat}?{VMS}'),
  row('202 202 403 202 404 401 401', 'POST {seat}/start?{VMS}', { state: ['seat', 'Stopped'] }),
  row('202 202 403 202 404 401 401', 'POST {seat}/powerOff?{VMS}', { state: ['seat', 'Running'] }),
  row('202 202 403 202 404 401 401', 'POST {seat}/restart?{VMS}'),
  row('202 202 403 202 404 401 401', 'POST {seat}/reimage?{VMS}'),
  row('202 202 403 202 404 401 401', 'POST {seat}/redeploy?{VMS}'),
  row('409 409 409 403 403 401 401', 'POST {seat}/generalize?{VMS}', { state: ['seat', 'Stopped'] }),
  row('200 200 403 200 404 401 401', 'POST {seat}/console?{VMS}', { state: ['seat', 'Running'] }),
  row('202 202 403 404 404 401 401', 'POST {template}/start?{VMS}', { state: ['template', 'Stopped'] }),
  // ---- galleries, image definitions, versions ----
  row('200 200 200 403 403 401 401', 'GET /subscriptions/{sub}/providers/Microsoft.Compute/galleries?{C}', { sees: [['dept', 'y y y - -']] }),
  row('200 200 200 403 403 401 401', 'GET {rg}/providers/Microsoft.Compute/galleries?{C}'),
  row('200 200 200 403 403 401 401', 'GET {gallery}?{C}'),
  row('200 403 403 403 403 401 401', 'PUT {gallery}?{C}', { body: { location: 'site-a' } }),
  row('200 403 403 403 403 401 401', 'PATCH {gallery}?{C}', { body: { tags: { dept: 'physics' } } }),
  row('200 403 403 403 403 401 401', 'DELETE {galleries}/{new}?{C}', { fresh: 'gallery' }),
  row('200 200 200 403 403 401 401', 'GET {gallery}/images?{C}'),
  row('200 200 200 403 403 401 401', 'GET {image}?{C}'),
  row('200 403 403 403 403 401 401', 'PUT {image}?{C}', {
    body: { location: 'site-a', properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'school', offer: 'course', sku: '1' } } },
  }),
  row('200 403 403 403 403 401 401', 'PATCH {image}?{C}', { body: { properties: { description: 'The course image' } } }),
  row('200 403 403 403 403 401 401', 'DELETE {gallery}/images/{new}?{C}', { fresh: 'image' }),
  row('200 200 200 403 403 401 401', 'GET {image}/versions?{C}'),
  row('200 200 200 403 403 401 401', 'GET {image}/versions/1.0.0?{C}'),
  row('200 200 200 403 403 401 401', 'GET {image}/versions/latest?{C}'),
  row('200 403 403 403 403 401 401', 'PATCH {image}/versions/1.0.0?{C}', { body: { tags: { term: 'spring' } } }),
  row('201 403 403 403 403 401 401', 'PUT {image}/versions/{new}?{C}', {
    fresh: 'versionName',
    body: { location: 'site-a', properties: { storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } } } } },
  }),
  row('200 403 403 403 403 401 401', 'DELETE {image}/versions/{new}?{C}', { fresh: 'version' }),
  row('200 200 200 403 403 401 401', 'GET {image}/versions/1.0.0/export?{C}&format=qcow2'),
  // ---- uploads (tus); {upload} is creatorA's, not finished ----
  row('201 201 201 403 403 401 401', 'POST /uploads', { headers: { ...TUS, 'upload-length': '1024' } }),
  row('200 200 403 403 403 401 401', 'HEAD {upload}', { headers: TUS }),
  row('204 204 403 403 403 401 401', 'PATCH /uploads/{new}', {
    fresh: 'upload',
    body: 'sixteen bytes...',
    headers: { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
  }),
  row('204 204 403 403 403 401 401', 'DELETE /uploads/{new}', { fresh: 'upload', headers: TUS }),
  // ---- accounts, tokens ----
  row('200 403 403 403 403 401 401', 'GET /providers/Labforge.Core/accounts?{L}'),
  row('200 403 403 403 403 401 401', 'GET /providers/Labforge.Core/accounts/kim@school.edu?{L}'),
  row('200 403 403 403 403 401 401', 'PUT /providers/Labforge.Core/accounts/kim@school.edu?{L}', { body: { properties: { displayName: 'Kim' } } }),
  row('201 403 403 403 403 401 401', 'PUT /providers/Labforge.Core/accounts/{new}@school.edu?{L}', {
    fresh: 'name',
    body: { properties: { role: 'creator' } },
  }),
  row('200 403 403 403 403 401 401', 'DELETE /providers/Labforge.Core/accounts/{new}?{L}', { fresh: 'account' }),
  row('200 200 200 200 200 401 401', 'GET /providers/Labforge.Core/whoami'),
  // physics's code: only an email on its list (it is not open) joins it with the code.
  row('404 404 404 200 404 401 401', 'POST /providers/Labforge.Core/redeemRegistrationCode?{L}', { body: (v) => ({ registrationCode: v.code }) }),
  row('200 403 403 403 403 401 401', 'GET /providers/Labforge.Core/tokens?{L}'),
  row('201 403 403 403 403 401 401', 'POST /providers/Labforge.Core/tokens?{L}', { body: { name: 'ci', role: 'creator' } }),
  row('200 403 403 403 403 401 401', 'DELETE /providers/Labforge.Core/tokens/{new}?{L}', { fresh: 'token' }),
  // ---- operations ({op}: creatorA's creation of physics) ----
  row('200 200 403 403 403 401 401', 'GET {op}?{L}'),
  row('200 200 200 200 200 401 401', 'GET /subscriptions/{sub}/providers/Labforge.Core/operations?{L}&$top=1000', { sees: [['{opId}', 'y y n n n']] }),
  row('200 200 403 403 403 401 401', 'POST {op}/cancel?{L}'),
  // ---- hosts, image stores ----
  row('200 200 200 403 403 401 401', 'GET /providers/Labforge.Core/hosts?{L}'),
  row('200 200 200 403 403 401 401', 'GET /providers/Labforge.Core/hosts/local?{L}'),
  row('200 403 403 403 403 401 401', 'POST /providers/Labforge.Core/hosts/local/checkAcceleration?{L}'),
  row('202 403 403 403 403 401 401', 'POST /subscriptions/{sub}/providers/Labforge.Core/imageStores/verify?{L}'),
  row('202 403 403 403 403 401 401', 'POST /subscriptions/{sub}/providers/Labforge.Core/imageStores/gc?{L}'),
  row('200 403 403 403 403 401 401', 'GET /subscriptions/{sub}/providers/Labforge.Core/imageStores/usage?{L}'),
];

describe.each(DIALECTS)('access matrix: every role against every route (%s)', (dialect) => {
  let t: TestServer;
  const tokens = {} as Record<Role, string | null>;
  const v: Vars = { LS, C: COMPUTE, L: LABFORGE, VMS };
  let fresh = 0;

  const fill = (s: string, vars: Vars) =>
    s.replace(/\{(\w+)\}/g, (_, k: string) => {
      if (vars[k] === undefined) throw new Error(`no value for {${k}} in '${s}'`);
      return vars[k] as string;
    });
  /** Waits for the operation a response started, if any, and fails when it did not succeed. */
  const settle = async (r: TestResponse, what: string) => {
    const url = r.headers['azure-asyncoperation'];
    if (typeof url !== 'string') return undefined;
    const op = await waitForOperation(t, url, 30_000);
    if (op.status !== 'Succeeded') throw new Error(`${what}: the operation ended ${op.status}: ${JSON.stringify(op.error)}`);
    return op;
  };
  /** An admin's request that must succeed (fixture and preparation of cells). */
  const must = async (method: string, path: string, body?: unknown, token: string | null = null) => {
    const r = await t.call(method, path, body, token ? { token } : {});
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    await settle(r, `${method} ${path}`);
    return r;
  };
  const upload = async () => {
    const r = await t.call('POST', '/uploads', undefined, { token: tokens.creatorA, headers: { ...TUS, 'upload-length': '1024' } });
    if (r.status !== 201) throw new Error(`upload: ${r.status}`);
    return (r.headers.location as string).split('/').pop() as string;
  };
  /** Puts a VM (a fixture path) in a state, as an admin. */
  const ensure = async (at: string, state: 'Running' | 'Stopped') => {
    const path = v[at] as string;
    const now = (await must('GET', `${path}?${VMS}`)).body.properties.state;
    if (now !== state) await must('POST', `${path}/${state === 'Running' ? 'start' : 'powerOff'}?${VMS}`);
    expect((await must('GET', `${path}?${VMS}`)).body.properties.state, `${at} should be ${state}`).toBe(state);
  };
  /** A fresh resource for one cell; returns its name. */
  const make = async (kind: Fresh): Promise<string> => {
    const name = `x${++fresh}`;
    switch (kind) {
      case 'name':
        return name;
      case 'versionName':
        return `3.0.${fresh}`;
      case 'lab':
        await must('PUT', `${v.labs}/${name}?${LS}`, labBody(v, 'Image', 0), tokens.creatorA);
        return name;
      case 'labUser':
        await must('PUT', `${v.lab}/users/${name}?${LS}`, { properties: { email: `${name}@school.edu` } }, tokens.creatorA);
        return name;
      case 'schedule':
        await must('PUT', `${v.lab}/schedules/${name}?${LS}`, scheduleBody, tokens.creatorA);
        return name;
      case 'vm':
      case 'stoppedVm':
        await must('PUT', `${v.vms}/${name}?${VMS}`, vmBody(v), tokens.creatorA);
        if (kind === 'stoppedVm') await must('POST', `${v.vms}/${name}/powerOff?${VMS}`);
        return name;
      case 'gallery':
        await must('PUT', `${v.galleries}/${name}?${COMPUTE}`, { location: 'site-a' });
        return name;
      case 'image':
        await must('PUT', `${v.gallery}/images/${name}?${COMPUTE}`, {
          location: 'site-a',
          properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'school', offer: name, sku: '1' } },
        });
        return name;
      case 'version': {
        const n = `2.0.${fresh}`;
        await must('PUT', `${v.image}/versions/${n}?${COMPUTE}`, {
          location: 'site-a',
          properties: { storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } } } },
        });
        return n;
      }
      case 'upload':
        return upload();
      case 'account':
        await must('PUT', `/providers/Labforge.Core/accounts/${name}@school.edu?${LABFORGE}`, { properties: { role: 'user' } });
        return `${name}@school.edu`;
      case 'token':
        return (await must('POST', `/providers/Labforge.Core/tokens?${LABFORGE}`, { name, role: 'user' })).body.name as string;
    }
  };

  beforeAll(async () => {
    t = await startTestServer(dialect, { env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    const rg = `/subscriptions/${t.sub}/resourceGroups/school`;
    Object.assign(v, {
      sub: t.sub,
      rg,
      labs: `${rg}/providers/Microsoft.LabServices/labs`,
      lab: `${rg}/providers/Microsoft.LabServices/labs/physics`,
      plan: `${rg}/providers/Microsoft.LabServices/labPlans/science`,
      vms: `${rg}/providers/Microsoft.Compute/virtualMachines`,
      desk: `${rg}/providers/Microsoft.Compute/virtualMachines/desk`,
      seat: `${rg}/providers/Microsoft.Compute/virtualMachines/${encodeURIComponent('labs/physics/0')}`,
      seat1: `${rg}/providers/Microsoft.Compute/virtualMachines/${encodeURIComponent('labs/physics/1')}`,
      template: `${rg}/providers/Microsoft.Compute/virtualMachines/${encodeURIComponent('labs/physics/template')}`,
      galleries: `${rg}/providers/Microsoft.Compute/galleries`,
      gallery: `${rg}/providers/Microsoft.Compute/galleries/dept`,
      image: `${rg}/providers/Microsoft.Compute/galleries/dept/images/course`,
    });
    v.imageId = v.image as string;
    tokens.admin = t.adminToken;
    tokens.anonymous = null;
    tokens.creatorA = await t.tokenFor('creator', 'rivera@school.edu');
    tokens.creatorB = await t.tokenFor('creator', 'okafor@school.edu');
    const revoked = await must('POST', `/providers/Labforge.Core/tokens?${LABFORGE}`, { name: 'leaked', role: 'admin' });
    await must('DELETE', `/providers/Labforge.Core/tokens/${revoked.body.name}?${LABFORGE}`);
    tokens.revoked = revoked.body.token as string;

    // A gallery with an image and a version; a lab plan offering it.
    await must('PUT', `${rg}?${RESOURCES}`, { location: 'site-a' });
    await must('PUT', `${v.gallery}?${COMPUTE}`, { location: 'site-a' });
    await must('PUT', `${v.image}?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'school', offer: 'course', sku: '1' } },
    });
    await must('PUT', `${v.image}/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } } } },
    });
    v.planId = (await must('PUT', `${v.plan}?${LS}`, { location: 'site-a', properties: { sharedGalleryId: v.gallery } })).body.id;
    await must('PATCH', `${v.plan}/images/course?${LS}`, { properties: { enabledState: 'Enabled' } });

    // creatorA's lab with a template and two seats, studentA on its list; creatorB's lab with studentB.
    const made = await must('PUT', `${v.lab}?${LS}`, labBody(v), tokens.creatorA);
    const opUrl = new URL(made.headers['azure-asyncoperation'] as string);
    v.op = opUrl.pathname;
    v.opId = opUrl.pathname.split('/').pop() as string;
    await must('PUT', `${v.lab}/users/kim?${LS}`, { properties: { email: 'kim@school.edu' } }, tokens.creatorA);
    await must('POST', `${v.lab}/publish?${LS}`, undefined, tokens.creatorA);
    await must('PUT', `${v.lab}/schedules/weekly?${LS}`, scheduleBody, tokens.creatorA);
    await must('PUT', `${v.labs}/chemistry?${LS}`, labBody(v, 'Image', 1), tokens.creatorB);
    await must('PUT', `${v.labs}/chemistry/users/lee?${LS}`, { properties: { email: 'lee@school.edu' } }, tokens.creatorB);
    await must('POST', `${v.labs}/chemistry/publish?${LS}`, undefined, tokens.creatorB);

    // The students register with their lab's code and use the session they get.
    for (const [role, email, lab] of [
      ['studentA', 'kim@school.edu', v.lab],
      ['studentB', 'lee@school.edu', `${v.labs}/chemistry`],
    ] as const) {
      const code = (await must('GET', `${lab}?${LS}`)).body.properties.securityProfile.registrationCode;
      if (role === 'studentA') v.code = code;
      const s = await t.call(
        'POST',
        `/providers/Labforge.Core/register?${LABFORGE}`,
        { email, password: 'Student-Pass-42', registrationCode: code },
        { token: null },
      );
      expect(s.status, JSON.stringify(s.body)).toBe(200);
      tokens[role] = s.body.token;
    }
    expect((await must('GET', `${v.lab}/virtualMachines/0?${LS}`)).body.properties.claimedByUserId).toBe('kim@school.edu');

    // A Compute VM creatorA made for studentA; an upload creatorA has started.
    await must('PUT', `${v.desk}?${VMS}`, vmBody(v), tokens.creatorA);
    v.upload = `/uploads/${await upload()}`;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('keeps a student whose hours are used up from booting their seat by any route; stopping and reimaging stay theirs, staff are not bound', async () => {
    await must('PATCH', `${v.lab}?${LS}`, { properties: { virtualMachineProfile: { usageQuota: 'PT0H' } } }, tokens.creatorA);
    try {
      const cases: Array<[string, 'Running' | 'Stopped', Role, number]> = [
        ['POST {lab}/virtualMachines/0/start?{LS}', 'Stopped', 'studentA', 409],
        ['POST {lab}/virtualMachines/0/redeploy?{LS}', 'Stopped', 'studentA', 409],
        ['POST {seat}/start?{VMS}', 'Stopped', 'studentA', 409],
        ['POST {seat}/restart?{VMS}', 'Stopped', 'studentA', 409],
        ['POST {seat}/redeploy?{VMS}', 'Stopped', 'studentA', 409],
        ['POST {seat}/restart?{VMS}', 'Running', 'studentA', 409],
        ['POST {lab}/virtualMachines/0/stop?{LS}', 'Running', 'studentA', 202],
        ['POST {seat}/powerOff?{VMS}', 'Running', 'studentA', 202],
        ['POST {lab}/virtualMachines/0/reimage?{LS}', 'Stopped', 'studentA', 202],
        ['POST {lab}/virtualMachines/0/start?{LS}', 'Stopped', 'creatorA', 202],
        ['POST {seat}/redeploy?{VMS}', 'Stopped', 'admin', 202],
      ];
      const wrong: string[] = [];
      for (const [req, state, role, want] of cases) {
        await ensure('seat', state);
        const [method, path] = req.split(' ') as [string, string];
        const res = await t.call(method, fill(path, v), undefined, { token: tokens[role] });
        await settle(res, req).catch(() => undefined);
        if (res.status !== want || (want === 409 && res.body.error.code !== 'QuotaExceeded')) {
          wrong.push(`${role} ${req} (VM ${state}) got ${res.status} ${res.body?.error?.code ?? ''}, expected ${want}`);
        }
      }
      expect(wrong).toEqual([]);
    } finally {
      await must('PATCH', `${v.lab}?${LS}`, { properties: { virtualMachineProfile: { usageQuota: 'PT10H' } } }, tokens.creatorA);
    }
  });

  it.each(ROWS.map((r) => [r.req, r] as const))('%s', async (_name, r) => {
    const [method, pathTemplate] = r.req.split(' ') as [string, string];
    const got: number[] = [];
    const seen = (r.sees ?? []).map(() => [] as string[]);
    for (const role of ROLES) {
      const cell: Vars = { ...v };
      if (r.fresh) cell.new = await make(r.fresh);
      if (r.state) await ensure(...r.state);
      const path = fill(pathTemplate, cell);
      const body = typeof r.body === 'function' ? (r.body as (x: Vars) => unknown)(cell) : r.body;
      const res = await t.call(method, path, body, { token: tokens[role], ...(r.headers ? { headers: r.headers } : {}) });
      got.push(res.status);
      // The next cell finds the resource idle: whatever this one started has ended.
      await settle(res, `${role} ${method} ${path}`).catch(() => undefined);
      if (r.sees && got.length <= 5) {
        const names = res.status === 200 ? (res.body.value as Array<{ name: string }>).map((x) => x.name) : undefined;
        for (const [i, [name]] of r.sees.entries()) seen[i]?.push(names ? (names.includes(fill(name, cell)) ? 'y' : 'n') : '-');
      }
    }
    const wrong = ROLES.flatMap((role, i) => (got[i] === r.expect[i] ? [] : [`${role} got ${got[i]}, expected ${r.expect[i]}`]));
    expect(wrong, `${r.req}: ${wrong.join('; ')}`).toEqual([]);
    for (const [i, [name, want]] of (r.sees ?? []).entries()) {
      expect(seen[i]?.join(' '), `${r.req}: which callers' list names '${name}' (admin creatorA creatorB studentA studentB)`).toBe(want);
    }
  });
});
