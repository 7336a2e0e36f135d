// Lab schedules: the student VMs of a lab start and stop at set times, once
// or on a daily or weekly pattern, at the same wall-clock time in the
// schedule's time zone (summer time included). A timer checks every few
// seconds which starts and stops fell due since the last check.
import { invalidParameter, notFound } from '../errors.js';
import { nowIso } from '../lib/time.js';
import { type Recurrence, type ScheduleRecord, type ScheduleRepository, WEEK_DAYS, type WeekDay } from '../repositories/schedule.repository.js';
import { checkName, type Principal, SYSTEM, Ticker } from './common.js';
import type { LabService } from './lab.service.js';
import type { VmService } from './vm.service.js';

export { type Recurrence, WEEK_DAYS, type WeekDay } from '../repositories/schedule.repository.js';

export interface LabSchedule {
  key: string;
  labName: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  startAt: string | null;
  stopAt: string;
  recurrence: Recurrence | null;
  timeZoneId: string;
  notes: string | null;
  createdAt: string;
  createdBy: string;
}

export interface ScheduleInput {
  startAt?: string | null;
  stopAt?: string;
  recurrencePattern?: { frequency?: string; interval?: number; weekDays?: string[]; expirationDate?: string } | null;
  timeZoneId?: string;
  notes?: string | null;
}

type Event = { at: number; kind: 'start' | 'stop' };

/** The wall-clock parts of an instant in a time zone. */
function parts(t: number, tz: string) {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  const o: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(t))) if (p.type !== 'literal') o[p.type] = Number(p.value);
  return { y: o.year as number, mo: o.month as number, d: o.day as number, h: o.hour as number, mi: o.minute as number, s: o.second as number };
}

/** The instant at which a zone's clock shows the given wall time. */
export function zonedTime(y: number, mo: number, d: number, h: number, mi: number, s: number, tz: string): number {
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  let t = wall;
  for (let i = 0; i < 3; i++) {
    const p = parts(t, tz);
    const shown = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s);
    if (shown === wall) break;
    t += wall - shown;
  }
  return t;
}

/** Starts and stops of a schedule that fall in (from, to]. */
export function eventsBetween(s: Pick<LabSchedule, 'startAt' | 'stopAt' | 'recurrence' | 'timeZoneId'>, from: number, to: number): Event[] {
  const out: Event[] = [];
  const add = (at: number, kind: Event['kind']) => {
    if (at > from && at <= to) out.push({ at, kind });
  };
  const start = s.startAt ? Date.parse(s.startAt) : undefined;
  const stop = Date.parse(s.stopAt);
  if (!s.recurrence) {
    if (start !== undefined) add(start, 'start');
    add(stop, 'stop');
    return out.sort((a, b) => a.at - b.at);
  }
  const tz = s.timeZoneId;
  const r = s.recurrence;
  const first = parts(start ?? stop, tz);
  const firstDay = Date.UTC(first.y, first.mo - 1, first.d);
  const end = Date.parse(r.expirationDate);
  const startClock = start !== undefined ? parts(start, tz) : undefined;
  const stopClock = parts(stop, tz);
  // A stop earlier in the day than the start belongs to the next day.
  const stopNextDay = startClock && stopClock.h * 3600 + stopClock.mi * 60 + stopClock.s < startClock.h * 3600 + startClock.mi * 60 + startClock.s ? 1 : 0;
  const lo = parts(from, tz);
  const hi = parts(to, tz);
  for (let day = Date.UTC(lo.y, lo.mo - 1, lo.d) - 86400_000; day <= Date.UTC(hi.y, hi.mo - 1, hi.d); day += 86400_000) {
    if (day < firstDay) continue;
    const index = Math.round((day - firstDay) / 86400_000);
    const date = new Date(day);
    if (r.frequency === 'Daily' && index % r.interval !== 0) continue;
    if (r.frequency === 'Weekly') {
      const days = r.weekDays?.length ? r.weekDays : [WEEK_DAYS[new Date(firstDay).getUTCDay()] as WeekDay];
      if (!days.includes(WEEK_DAYS[date.getUTCDay()] as WeekDay) || Math.floor(index / 7) % r.interval !== 0) continue;
    }
    const [y, mo, d] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
    if (startClock) {
      const at = zonedTime(y, mo, d, startClock.h, startClock.mi, startClock.s, tz);
      if (at <= end) add(at, 'start');
    }
    const next = new Date(day + stopNextDay * 86400_000);
    const stopAt = zonedTime(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), stopClock.h, stopClock.mi, stopClock.s, tz);
    if (stopAt <= end + stopNextDay * 86400_000) add(stopAt, 'stop');
  }
  return out.sort((a, b) => a.at - b.at);
}

const toSchedule = (r: ScheduleRecord, lab: { name: string; subscriptionId: string; resourceGroup: string }): LabSchedule => ({
  key: r.key,
  labName: lab.name,
  subscriptionId: lab.subscriptionId,
  resourceGroup: lab.resourceGroup,
  name: r.name,
  startAt: r.startAt,
  stopAt: r.stopAt,
  recurrence: r.recurrence,
  timeZoneId: r.timeZoneId,
  notes: r.notes,
  createdAt: r.createdAt,
  createdBy: r.createdBy,
});

export class ScheduleService {
  /** What the last ticks did, newest last (for logs and tests). */
  readonly actions: string[] = [];

  constructor(
    private readonly records: ScheduleRepository,
    private readonly labs: LabService,
    private readonly vms: VmService,
  ) {}

  private async lab(p: Principal, sub: string, rg: string, lab: string, write: boolean) {
    const r = await this.labs.requireLab(p, sub, rg, lab);
    if (p.role === 'user') throw notFound('ResourceNotFound', `The Resource 'Microsoft.LabServices/labs/${lab}' under resource group '${rg}' was not found.`);
    if (write) this.labs.checkOwner(p, r);
    return r;
  }

  async list(p: Principal, sub: string, rg: string, lab: string): Promise<LabSchedule[]> {
    const l = await this.lab(p, sub, rg, lab, false);
    return (await this.records.listByLab(l.key)).map((r) => toSchedule(r, l));
  }

  async get(p: Principal, sub: string, rg: string, lab: string, name: string): Promise<LabSchedule> {
    const hit = (await this.list(p, sub, rg, lab)).find((s) => s.name.toLowerCase() === name.toLowerCase());
    if (!hit)
      throw notFound('ResourceNotFound', `The Resource 'Microsoft.LabServices/labs/${lab}/schedules/${name}' under resource group '${rg}' was not found.`);
    return hit;
  }

  private check(input: ScheduleInput, base?: LabSchedule) {
    const f = 'properties';
    const date = (v: string | null | undefined, field: string) => {
      if (v === undefined || v === null) return v;
      if (Number.isNaN(Date.parse(v))) throw invalidParameter(`${field} must be a date and time such as 2026-12-01T08:00:00Z; got '${v}'.`, field);
      return new Date(v).toISOString();
    };
    const startAt = input.startAt !== undefined ? date(input.startAt, `${f}.startAt`) : (base?.startAt ?? null);
    const stopAt = input.stopAt !== undefined ? date(input.stopAt, `${f}.stopAt`) : base?.stopAt;
    if (!stopAt) throw invalidParameter(`${f}.stopAt is required: when the lab's VMs stop.`, `${f}.stopAt`);
    if (startAt && !input.recurrencePattern && !base?.recurrence && Date.parse(startAt) >= Date.parse(stopAt)) {
      throw invalidParameter(`${f}.stopAt must come after startAt.`, `${f}.stopAt`);
    }
    const timeZoneId = input.timeZoneId ?? base?.timeZoneId;
    if (!timeZoneId) throw invalidParameter(`${f}.timeZoneId is required: an IANA time zone such as Europe/Berlin.`, `${f}.timeZoneId`);
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timeZoneId });
    } catch {
      throw invalidParameter(`'${timeZoneId}' is not a time zone. Use an IANA name such as Europe/Berlin or America/New_York.`, `${f}.timeZoneId`);
    }
    let recurrence = base?.recurrence ?? null;
    if (input.recurrencePattern !== undefined) {
      const rp = input.recurrencePattern;
      if (rp === null) recurrence = null;
      else {
        const frequency = (['Daily', 'Weekly'] as const).find((x) => x.toLowerCase() === String(rp.frequency ?? '').toLowerCase());
        if (!frequency) throw invalidParameter(`${f}.recurrencePattern.frequency must be Daily or Weekly.`, `${f}.recurrencePattern.frequency`);
        const interval = rp.interval ?? 1;
        if (!Number.isInteger(interval) || interval < 1 || interval > 365)
          throw invalidParameter(`${f}.recurrencePattern.interval must be 1 to 365.`, `${f}.recurrencePattern.interval`);
        const weekDays = (rp.weekDays ?? []).map((d) => {
          const hit = WEEK_DAYS.find((w) => w.toLowerCase() === d.toLowerCase());
          if (!hit) throw invalidParameter(`'${d}' is not a week day. Use ${WEEK_DAYS.join(', ')}.`, `${f}.recurrencePattern.weekDays`);
          return hit;
        });
        const expirationDate = date(rp.expirationDate, `${f}.recurrencePattern.expirationDate`);
        if (!expirationDate)
          throw invalidParameter(`${f}.recurrencePattern.expirationDate is required: the last day of the pattern.`, `${f}.recurrencePattern.expirationDate`);
        recurrence = { frequency, interval, ...(weekDays.length ? { weekDays } : {}), expirationDate };
      }
    }
    const notes = input.notes !== undefined ? input.notes : (base?.notes ?? null);
    if (notes && notes.length > 1000) throw invalidParameter(`${f}.notes can hold at most 1000 characters.`, `${f}.notes`);
    return { startAt, stopAt, timeZoneId, recurrence, notes };
  }

  async put(
    p: Principal,
    sub: string,
    rg: string,
    lab: string,
    name: string,
    input: ScheduleInput,
    mode: 'put' | 'patch',
  ): Promise<{ schedule: LabSchedule; created: boolean }> {
    const l = await this.lab(p, sub, rg, lab, true);
    checkName('schedule', name);
    const existing = await this.records.byName(l.key, name);
    const v = this.check(input, existing && mode === 'patch' ? toSchedule(existing, l) : undefined);
    const times = { startAt: v.startAt ?? null, stopAt: v.stopAt, recurrence: v.recurrence, timeZoneId: v.timeZoneId, notes: v.notes };
    if (existing) {
      await this.records.updateTimes(existing.key, times);
    } else {
      if (mode === 'patch') throw notFound('ResourceNotFound', `The Resource 'Microsoft.LabServices/labs/${lab}/schedules/${name}' was not found.`);
      await this.records.insert({ labKey: l.key, name, ...times, checkedUntil: nowIso(), createdAt: nowIso(), createdBy: p.subject });
    }
    return { schedule: await this.get(p, sub, rg, lab, name), created: !existing };
  }

  async delete(p: Principal, sub: string, rg: string, lab: string, name: string): Promise<boolean> {
    const l = await this.lab(p, sub, rg, lab, true);
    return this.records.deleteByName(l.key, name);
  }

  /** Acts on every start and stop that fell due since the last check (the lab's student VMs). */
  async tick(now = Date.now()): Promise<void> {
    const rows = await this.records.all();
    for (const r of rows) {
      const lab = await this.labs.find(r.labKey);
      if (!lab) continue;
      const events = eventsBetween(toSchedule(r, lab), Date.parse(r.checkedUntil), now);
      await this.records.setCheckedUntil(r.key, new Date(now).toISOString());
      const last = events[events.length - 1];
      if (!last) continue;
      // Only the latest event counts: a server that was down for days does not replay every start and stop.
      const want = last.kind === 'start' ? 'Stopped' : 'Running';
      const seats = (await this.vms.labVms(lab.key, { type: 'User' })).filter((v) => v.provisioningState === 'Succeeded');
      for (const s of seats) {
        if (s.state !== want) continue;
        try {
          await this.vms.powerByKey(SYSTEM, s.key, last.kind === 'start' ? 'start' : 'stop');
          this.actions.push(`${new Date(last.at).toISOString()} ${r.name}: ${last.kind} ${s.name}`);
        } catch {
          // Busy with another operation: the user's own action wins.
        }
      }
    }
    if (this.actions.length > 1000) this.actions.splice(0, this.actions.length - 1000);
  }

  private readonly ticker = new Ticker('lab scheduler', () => this.tick());

  /** Checks every `ms` until stopped. */
  start(ms = 15_000): void {
    this.ticker.start(ms);
  }

  stop(): Promise<void> {
    return this.ticker.stop();
  }
}
