// Lab schedules: when starts and stops fall (time zones, summer time, weekly
// days, nights that cross midnight, expiry), and the scheduler acting on a
// published lab's student VMs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsBetween, zonedTime } from '../../src/services/schedule.service.js';
import { fakeDriver } from '../helpers/fake-compute.js';
import { publishedLab } from '../helpers/labs.js';
import { startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const iso = (e: { at: number; kind: string }) => `${e.kind} ${new Date(e.at).toISOString()}`;
const H = 3600_000;

describe('schedule times', () => {
  it('keeps the wall-clock time in the time zone, across the change to summer time', () => {
    expect(new Date(zonedTime(2027, 3, 27, 8, 0, 0, 'Europe/Berlin')).toISOString()).toBe('2027-03-27T07:00:00.000Z');
    expect(new Date(zonedTime(2027, 3, 29, 8, 0, 0, 'Europe/Berlin')).toISOString()).toBe('2027-03-29T06:00:00.000Z');
    const daily = {
      startAt: '2027-03-26T07:00:00Z',
      stopAt: '2027-03-26T08:30:00Z',
      timeZoneId: 'Europe/Berlin',
      recurrence: { frequency: 'Daily' as const, interval: 1, expirationDate: '2027-12-31T00:00:00Z' },
    };
    expect(eventsBetween(daily, Date.parse('2027-03-27T00:00:00Z'), Date.parse('2027-03-30T00:00:00Z')).map(iso)).toEqual([
      'start 2027-03-27T07:00:00.000Z',
      'stop 2027-03-27T08:30:00.000Z',
      'start 2027-03-28T06:00:00.000Z',
      'stop 2027-03-28T07:30:00.000Z',
      'start 2027-03-29T06:00:00.000Z',
      'stop 2027-03-29T07:30:00.000Z',
    ]);
  });

  it('runs weekly on the given days only, every other week, until it expires', () => {
    const weekly = {
      startAt: '2026-11-23T14:00:00Z',
      stopAt: '2026-11-23T16:00:00Z',
      timeZoneId: 'UTC',
      recurrence: { frequency: 'Weekly' as const, interval: 2, weekDays: ['Monday' as const, 'Wednesday' as const], expirationDate: '2026-12-09T23:59:59Z' },
    };
    const starts = eventsBetween(weekly, Date.parse('2026-11-22T00:00:00Z'), Date.parse('2026-12-31T00:00:00Z'))
      .filter((e) => e.kind === 'start')
      .map((e) => new Date(e.at).toISOString().slice(0, 10));
    expect(starts).toEqual(['2026-11-23', '2026-11-25', '2026-12-07', '2026-12-09']);
  });

  it('puts a stop that is earlier in the day than the start on the next day, and runs a one-time schedule once', () => {
    const night = {
      startAt: '2026-11-23T22:00:00Z',
      stopAt: '2026-11-23T02:00:00Z',
      timeZoneId: 'UTC',
      recurrence: { frequency: 'Daily' as const, interval: 1, expirationDate: '2026-11-24T23:00:00Z' },
    };
    expect(eventsBetween(night, Date.parse('2026-11-23T12:00:00Z'), Date.parse('2026-11-26T12:00:00Z')).map(iso)).toEqual([
      'start 2026-11-23T22:00:00.000Z',
      'stop 2026-11-24T02:00:00.000Z',
      'start 2026-11-24T22:00:00.000Z',
      'stop 2026-11-25T02:00:00.000Z',
    ]);
    const once = { startAt: '2026-11-23T09:00:00Z', stopAt: '2026-11-23T10:00:00Z', timeZoneId: 'UTC', recurrence: null };
    expect(eventsBetween(once, 0, Date.parse('2030-01-01T00:00:00Z')).map(iso)).toEqual(['start 2026-11-23T09:00:00.000Z', 'stop 2026-11-23T10:00:00.000Z']);
  });
});

describe('lab schedules through the API', () => {
  let t: TestServer;
  const LS = 'api-version=2022-08-01';
  let rg: string;

  beforeAll(async () => {
    t = await startTestServer('sqlite', { env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    ({ rg } = await publishedLab(t, { plan: 'p' }));
  });
  afterAll(async () => t?.close());

  it('starts and stops the students VMs when the schedule says, and refuses schedules it cannot follow', async () => {
    const url = `${rg}/providers/Microsoft.LabServices/labs/physics/schedules/class?${LS}`;
    const bad = await t.call('PUT', url, { properties: { stopAt: '2026-12-01T10:00:00Z', timeZoneId: 'Mars/Olympus' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/IANA/);
    expect((await t.call('PUT', url, { properties: { timeZoneId: 'UTC' } })).body.error.target).toBe('properties.stopAt');
    const now = Date.now();
    const s = await t.call('PUT', url, {
      properties: {
        startAt: new Date(now + H).toISOString(),
        stopAt: new Date(now + 2 * H).toISOString(),
        timeZoneId: 'Europe/Berlin',
        recurrencePattern: { frequency: 'Daily', expirationDate: new Date(now + 30 * 24 * H).toISOString() },
        notes: 'Tuesday class',
      },
    });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    expect(s.body.properties.recurrencePattern).toMatchObject({ frequency: 'Daily', interval: 1 });
    const states = async () =>
      (await t.call('GET', `${rg}/providers/Microsoft.LabServices/labs/physics/virtualMachines?${LS}`)).body.value.map(
        (v: { properties: { state: string } }) => v.properties.state,
      );
    const settle = async (want: string) => {
      for (let i = 0; i < 100 && (await states()).some((x: string) => x !== want); i++) await new Promise((r) => setTimeout(r, 50));
      return states();
    };
    await t.server.services.schedules.tick(now + H / 2);
    expect(await states()).toEqual(['Stopped', 'Stopped']);
    await t.server.services.schedules.tick(now + H + 1000);
    expect(await settle('Running')).toEqual(['Running', 'Running']);
    await t.server.services.schedules.tick(now + 2 * H + 1000);
    expect(await settle('Stopped')).toEqual(['Stopped', 'Stopped']);
    // The next day's class, after a server that was down all day: only the latest event counts.
    await t.server.services.schedules.tick(now + 25 * H + 1000);
    expect(await settle('Running')).toEqual(['Running', 'Running']);
    expect((await t.call('DELETE', url)).status).toBe(200);
  });

  it('shuts down student VMs nobody connected to, that were left after a disconnect, or that sit idle', async () => {
    const lab = `${rg}/providers/Microsoft.LabServices/labs/physics`;
    const p = await t.call('PATCH', `${lab}?${LS}`, {
      properties: {
        autoShutdownProfile: {
          shutdownWhenNotConnected: 'Enabled',
          noConnectDelay: 'PT15M',
          shutdownOnDisconnect: 'Enabled',
          disconnectDelay: 'PT5M',
          shutdownOnIdle: 'None',
        },
      },
    });
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    const keys = (
      await t.server.services.store.db.selectFrom('virtual_machines').select(['id', 'name']).where('name', 'like', 'labs/physics/%').orderBy('name').execute()
    ).map((r) => r.id);
    const [a, b] = keys as [string, string];
    const state = async (i: number) => (await t.call('GET', `${lab}/virtualMachines/${i}?${LS}`)).body.properties.state as string;
    const settle = async (i: number, want: string) => {
      for (let n = 0; n < 100 && (await state(i)) !== want; n++) await new Promise((r) => setTimeout(r, 50));
      return state(i);
    };
    const auto = t.server.services.autoShutdown;
    const t0 = Date.now();
    fakeDriver.activities.set(a, { connections: 1, cpuSeconds: 10 });
    await auto.tick(t0);
    fakeDriver.activities.set(a, { connections: 0, cpuSeconds: 20 });
    await auto.tick(t0 + 4 * 60_000);
    expect([await state(0), await state(1)]).toEqual(['Running', 'Running']);
    await auto.tick(t0 + 6 * 60_000);
    expect(await settle(0, 'Stopped')).toBe('Stopped');
    expect(await state(1)).toBe('Running');
    await auto.tick(t0 + 16 * 60_000);
    expect(await settle(1, 'Stopped')).toBe('Stopped');
    expect(auto.actions.map((x) => x.replace(/^\S+ /, ''))).toEqual([
      'labs/physics/0: stopped (disconnected)',
      'labs/physics/1: stopped (nobody connected after the start)',
    ]);

    // Idle: a VM that uses under 5% of a CPU for the idle delay is stopped; a busy one keeps running.
    await t.call('PATCH', `${lab}?${LS}`, {
      properties: {
        autoShutdownProfile: { shutdownWhenNotConnected: 'Disabled', shutdownOnDisconnect: 'Disabled', shutdownOnIdle: 'LowUsage', idleDelay: 'PT30M' },
      },
    });
    for (const i of [0, 1]) {
      const r = await t.call('POST', `${lab}/virtualMachines/${i}/start?${LS}`);
      await waitForOperation(t, r.headers['azure-asyncoperation'] as string);
    }
    const t1 = Date.now();
    for (let m = 0; m <= 31; m++) {
      fakeDriver.activities.set(a, { connections: 0, cpuSeconds: m * 1 });
      fakeDriver.activities.set(b, { connections: 0, cpuSeconds: m * 30 });
      await auto.tick(t1 + m * 60_000);
    }
    expect(await settle(0, 'Stopped')).toBe('Stopped');
    expect(await state(1)).toBe('Running');
  });
});
