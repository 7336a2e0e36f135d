// The `lab_schedules` table: when the student VMs of a lab start and stop,
// with the recurrence pattern as a JSON column. Every query on the table is
// here, with the mapping of a row to `ScheduleRecord`. The schedule service is
// the only writer.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, LabScheduleTable } from '../db/schema.js';
import { keyOf } from './common.js';

export const WEEK_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
export type WeekDay = (typeof WEEK_DAYS)[number];

export interface Recurrence {
  frequency: 'Daily' | 'Weekly';
  interval: number;
  weekDays?: WeekDay[];
  expirationDate: string;
}

export interface ScheduleRecord {
  key: string;
  labKey: string;
  name: string;
  startAt: string | null;
  stopAt: string;
  recurrence: Recurrence | null;
  timeZoneId: string;
  notes: string | null;
  /** The scheduler has acted on every start and stop up to this time. */
  checkedUntil: string;
  createdAt: string;
  createdBy: string;
}

/** What a person sets of a schedule. */
export type ScheduleTimes = Pick<ScheduleRecord, 'startAt' | 'stopAt' | 'recurrence' | 'timeZoneId' | 'notes'>;

const toSchedule = (r: LabScheduleTable): ScheduleRecord => ({
  key: r.id,
  labKey: r.lab_id,
  name: r.name,
  startAt: r.start_at,
  stopAt: r.stop_at,
  recurrence: r.recurrence ? (JSON.parse(r.recurrence) as Recurrence) : null,
  timeZoneId: r.time_zone,
  notes: r.notes,
  checkedUntil: r.checked_until,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

const timeColumns = (t: ScheduleTimes) => ({
  start_at: t.startAt,
  stop_at: t.stopAt,
  recurrence: t.recurrence ? JSON.stringify(t.recurrence) : null,
  time_zone: t.timeZoneId,
  notes: t.notes,
});

export class ScheduleRepository {
  constructor(readonly db: Kysely<Database>) {}

  /** A lab's schedules by name. */
  async listByLab(labKey: string): Promise<ScheduleRecord[]> {
    return (await this.db.selectFrom('lab_schedules').selectAll().where('lab_id', '=', labKey).orderBy('name_key').execute()).map(toSchedule);
  }

  async byName(labKey: string, name: string): Promise<ScheduleRecord | undefined> {
    const r = await this.db.selectFrom('lab_schedules').selectAll().where('lab_id', '=', labKey).where('name_key', '=', keyOf(name)).executeTakeFirst();
    return r ? toSchedule(r) : undefined;
  }

  /** Every schedule of every lab (for the scheduler). */
  async all(): Promise<ScheduleRecord[]> {
    return (await this.db.selectFrom('lab_schedules').selectAll().execute()).map(toSchedule);
  }

  async insert(s: ScheduleTimes & Pick<ScheduleRecord, 'labKey' | 'name' | 'checkedUntil' | 'createdAt' | 'createdBy'>): Promise<void> {
    await this.db
      .insertInto('lab_schedules')
      .values({
        id: randomUUID(),
        lab_id: s.labKey,
        name: s.name,
        name_key: keyOf(s.name),
        ...timeColumns(s),
        checked_until: s.checkedUntil,
        created_at: s.createdAt,
        created_by: s.createdBy,
      })
      .execute();
  }

  async updateTimes(key: string, t: ScheduleTimes): Promise<void> {
    await this.db.updateTable('lab_schedules').set(timeColumns(t)).where('id', '=', key).execute();
  }

  async setCheckedUntil(key: string, at: string): Promise<void> {
    await this.db.updateTable('lab_schedules').set({ checked_until: at }).where('id', '=', key).execute();
  }

  /** Deletes a lab's schedule by name; false when there was none. */
  async deleteByName(labKey: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('lab_schedules').where('lab_id', '=', labKey).where('name_key', '=', keyOf(name)).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
