// The rules of VMs, on both metadata stores, with a compute driver that runs
// nothing: who sees and does what, refusals that say what to do, power state
// reconciled with the driver, files and bases cleaned up on delete.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeDriver } from '../helpers/fake-compute.js';
import { DIALECTS } from '../helpers/pg.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const VMS = 'api-version=2024-07-01';

describe.each(DIALECTS)('VM rules (%s)', (dialect) => {
  let t: TestServer;
  let rg: string;
  let image: string;
  let student: string;
  let other: string;
  const vmUrl = (name: string, action = '') => `${rg}/providers/Microsoft.Compute/virtualMachines/${name}${action ? `/${action}` : ''}?${VMS}`;
  const body = (extra: Record<string, unknown> = {}) => ({
    location: 'site-a',
    properties: {
      storageProfile: { imageReference: { id: image } },
      osProfile: { adminUsername: 'teacher', adminPassword: 'Classroom-2026' },
      ...extra,
    },
  });
  async function create(name: string, extra: Record<string, unknown> = {}) {
    const r = await t.call('PUT', vmUrl(name), body(extra));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.properties.state).toBe('Starting');
    const op = await waitForOperation(t, r.headers['azure-asyncoperation'] as string);
    expect(op.status, JSON.stringify(op)).toBe('Succeeded');
    return r.body.properties.vmId as string;
  }

  beforeAll(async () => {
    t = await startTestServer(dialect, { env: { LABFORGE_COMPUTE_DRIVER: 'fake', LABFORGE_CONNECT_HOST: 'vm.school.example' } });
    rg = `/subscriptions/${t.sub}/resourceGroups/lab`;
    expect((await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    expect((await t.call('PUT', `${rg}/providers/Microsoft.Compute/galleries/g?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
    image = `${rg}/providers/Microsoft.Compute/galleries/g/images/course`;
    const def = await t.call('PUT', `${image}?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'p', offer: 'o', sku: 's' } },
    });
    expect(def.status).toBe(201);
    const v = await t.call('PUT', `${image}/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } } } },
    });
    expect((await waitForOperation(t, v.headers['azure-asyncoperation'] as string)).status).toBe('Succeeded');
    student = await t.tokenFor('user', 'kim');
    other = await t.tokenFor('user', 'lee');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lets staff create VMs for a student, who sees and starts only their own', async () => {
    const refused = await t.call('PUT', vmUrl('mine'), body(), { token: student });
    expect(refused.status).toBe(403);
    await create('kim-1', { owner: 'kim' });
    await create('staff-1');
    const list = await t.call('GET', `/subscriptions/${t.sub}/providers/Microsoft.Compute/virtualMachines?${VMS}`, undefined, { token: student });
    expect(list.body.value.map((v: { name: string }) => v.name)).toEqual(['kim-1']);
    expect((await t.call('GET', vmUrl('staff-1'), undefined, { token: student })).status).toBe(404);
    expect((await t.call('POST', vmUrl('staff-1', 'start'), undefined, { token: student })).status).toBe(404);
    expect((await t.call('POST', vmUrl('kim-1', 'console'), undefined, { token: other })).status).toBe(404);
    const own = await t.call('GET', vmUrl('kim-1'), undefined, { token: student });
    expect(own.body.properties).toMatchObject({ state: 'Running', owner: 'kim', provisioningState: 'Succeeded' });
    // The address the student types: the host name the server was told people connect to.
    expect(own.body.properties.connectionProfile.sshAuthority).toMatch(/^vm\.school\.example:\d+$/);

    const stop = await t.call('POST', vmUrl('kim-1', 'powerOff'), undefined, { token: student });
    expect(stop.status).toBe(202);
    expect((await waitForOperation(t, stop.headers['azure-asyncoperation'] as string)).status).toBe('Succeeded');
    expect((await t.call('GET', vmUrl('kim-1'), undefined, { token: student })).body.properties.state).toBe('Stopped');
    const consoleStopped = await t.call('POST', vmUrl('kim-1', 'console'), undefined, { token: student });
    expect(consoleStopped.status).toBe(409);
    expect(consoleStopped.body.error.message).toMatch(/start it/);
    expect((await t.call('DELETE', vmUrl('kim-1'), undefined, { token: student })).status).toBe(403);
  });

  it('reports a VM the guest shut down as Stopped, and one whose files vanished as Failed', async () => {
    const id = await create('drifter');
    (fakeDriver.vms.get(id) as { state: string }).state = 'Stopped';
    const r = await t.call('GET', vmUrl('drifter'));
    expect(r.body.properties.state).toBe('Stopped');
    expect(r.body.properties.instanceView.statuses[1].code).toBe('PowerState/stopped');
    fakeDriver.vms.delete(id);
    const gone = await t.call('GET', vmUrl('drifter'));
    expect(gone.body.properties.state).toBe('Failed');
    expect(gone.body.properties.statusMessage).toMatch(/delete the VM and create it again/);
    // Server start reconciles every VM the same way.
    expect((await t.server.services.vms.reconcile()).running).toBeGreaterThanOrEqual(1);
  });

  it('refuses changes it cannot make, and explains what to do', async () => {
    await create('fixed');
    const resize = await t.call('PUT', vmUrl('fixed'), body({ hardwareProfile: { vmSize: 'Standard_B2s' } }));
    expect(resize.status).toBe(409);
    expect(resize.body.error.code).toBe('PropertyChangeNotAllowed');
    const retag = await t.call('PATCH', vmUrl('fixed'), { tags: { course: 'cs101' } });
    expect(retag.status).toBe(200);
    expect(retag.body.tags).toEqual({ course: 'cs101' });
    const size = await t.call('PUT', vmUrl('huge'), body({ hardwareProfile: { vmSize: 'Standard_M416ms_v2' } }));
    expect(size.status).toBe(400);
    expect(size.body.error.message).toContain('Standard_B1s');
    const data = await t.call('PUT', vmUrl('badseed'), body({ osProfile: { adminUsername: 'teacher', adminPassword: 'Classroom-2026', customData: 'aGk=' } }));
    expect(data.status).toBe(400);
    expect(data.body.error.message).toMatch(/#cloud-config/);
    const root = await t.call('PUT', vmUrl('rooty'), body({ osProfile: { adminUsername: 'root', adminPassword: 'Classroom-2026' } }));
    expect(root.status).toBe(400);
    // A running VM cannot be generalized; a generalized one cannot start.
    const gen = await t.call('POST', vmUrl('fixed', 'generalize'));
    expect(gen.status).toBe(409);
    expect(gen.body.error.message).toMatch(/Deprovision the guest/);
    const stop = await t.call('POST', vmUrl('fixed', 'powerOff'));
    await waitForOperation(t, stop.headers['azure-asyncoperation'] as string);
    expect((await t.call('POST', vmUrl('fixed', 'generalize'))).status).toBe(200);
    const start = await t.call('POST', vmUrl('fixed', 'start'));
    expect(start.status).toBe(409);
    expect(start.body.error.code).toBe('OperationNotAllowed');
    // A generalized VM cannot be reimaged or redeployed either.
    expect((await t.call('POST', vmUrl('fixed', 'reimage'))).status).toBe(409);
    expect((await t.call('POST', vmUrl('fixed', 'redeploy'))).status).toBe(409);
    // The version under VMs cannot be deleted.
    const del = await t.call('DELETE', `${image}/versions/1.0.0?${COMPUTE}`);
    expect(del.status).toBe(409);
    expect(del.body.error.code).toBe('VersionInUse');
    const v = await t.call('GET', `${image}/versions/1.0.0?${COMPUTE}`);
    expect(v.body.properties.usedBy).toEqual(expect.arrayContaining(['VM lab/fixed']));
  });

  it('reimages a VM onto a fresh disk (it ends stopped) and redeploys one (it runs again)', async () => {
    const id = await create('again');
    const overlay = join(t.dataDir, 'compute', 'disks', id, 'os.qcow2');
    writeFileSync(overlay, 'the guest wrote here', { flag: 'a' });
    const before = statSync(overlay).size;
    const r = await t.call('POST', vmUrl('again', 'reimage'));
    expect(r.status).toBe(202);
    const op = await t.call('GET', new URL(r.headers['azure-asyncoperation'] as string).pathname + new URL(r.headers['azure-asyncoperation'] as string).search);
    expect(op.body.properties.kind).toBe('compute.vm.power');
    expect((await waitForOperation(t, r.headers['azure-asyncoperation'] as string)).status).toBe('Succeeded');
    expect((await t.call('GET', vmUrl('again'))).body.properties.state).toBe('Stopped');
    expect(statSync(overlay).size).toBeLessThan(before);
    const d = await t.call('POST', vmUrl('again', 'redeploy'));
    expect((await waitForOperation(t, d.headers['azure-asyncoperation'] as string)).status).toBe('Succeeded');
    expect((await t.call('GET', vmUrl('again'))).body.properties.state).toBe('Running');
  });

  it('keeps console tickets hashed in the database, each opening each channel once', async () => {
    await create('desk-9');
    const c = await t.call('POST', vmUrl('desk-9', 'console'));
    expect(c.status).toBe(200);
    const ticket = /\/consoles\/([A-Za-z0-9_-]+)\/serial$/.exec(c.body.serialUrl)?.[1] as string;
    const rows = await t.server.services.store.db.selectFrom('console_tickets').selectAll().execute();
    expect(rows.map((r) => r.ticket_hash)).toContain(createHash('sha256').update(ticket).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(ticket);
    const tickets = t.server.services.consoleTickets;
    expect((await tickets.redeem(ticket, 'serial')).state).toBe('Running');
    await expect(tickets.redeem(ticket, 'serial')).rejects.toMatchObject({ status: 401, code: 'InvalidConsoleTicket' });
    // Two redeemers racing for the other channel: one gets it.
    const race = await Promise.allSettled([tickets.redeem(ticket, 'vnc'), tickets.redeem(ticket, 'vnc')]);
    expect(race.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    await expect(tickets.redeem('not-a-ticket', 'vnc')).rejects.toMatchObject({ code: 'InvalidConsoleTicket' });
  });

  it('deletes a VM with its disk, and the base when no VM uses it any more', async () => {
    const bases = join(t.dataDir, 'compute', 'bases');
    for (const vm of (await t.call('GET', `${rg}/providers/Microsoft.Compute/virtualMachines?${VMS}`)).body.value) {
      expect((await t.call('DELETE', `${vm.id}?${VMS}`)).status).toBe(200);
      expect(existsSync(join(t.dataDir, 'compute', 'disks', vm.properties.vmId))).toBe(false);
      expect(fakeDriver.vms.has(vm.properties.vmId)).toBe(false);
    }
    expect(readdirSync(bases)).toEqual([]);
    expect((await t.call('DELETE', vmUrl('fixed'))).status).toBe(204);
    expect((await t.call('DELETE', `${image}/versions/1.0.0?${COMPUTE}`)).status).toBe(200);
  });
});
