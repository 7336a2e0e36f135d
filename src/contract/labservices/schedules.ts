// Microsoft.LabServices/labs/schedules: when a lab's student VMs start and stop.
import Type, { type Static } from 'typebox';
import { SystemData } from '../arm.js';
import { Nullable, StringEnum } from '../schema.js';

export const WEEK_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;

export const RecurrencePattern = Type.Object({
  frequency: StringEnum(['Daily', 'Weekly']),
  interval: Type.Integer(),
  weekDays: Type.Optional(Type.Array(StringEnum(WEEK_DAYS))),
  expirationDate: Type.String(),
});
export type RecurrencePattern = Static<typeof RecurrencePattern>;

export const Schedule = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  systemData: SystemData,
  properties: Type.Object({
    startAt: Type.Optional(Type.String()),
    stopAt: Type.String(),
    recurrencePattern: Type.Optional(RecurrencePattern),
    timeZoneId: Type.String({ description: 'IANA time zone' }),
    notes: Type.Optional(Type.String()),
    provisioningState: Type.String(),
  }),
});
export type Schedule = Static<typeof Schedule>;

/** PUT and PATCH of a schedule; the server checks the values (stopAt and timeZoneId are required on PUT) and names the field it refuses. */
export const ScheduleInput = Type.Object({
  properties: Type.Object({
    startAt: Type.Optional(Nullable(Type.String())),
    stopAt: Type.Optional(Type.String()),
    recurrencePattern: Type.Optional(
      Nullable(
        Type.Object({
          frequency: Type.Optional(Type.String()),
          interval: Type.Optional(Type.Number()),
          weekDays: Type.Optional(Type.Array(Type.String())),
          expirationDate: Type.Optional(Type.String()),
        }),
      ),
    ),
    timeZoneId: Type.Optional(Type.String()),
    notes: Type.Optional(Nullable(Type.String())),
  }),
});
export type ScheduleInput = Static<typeof ScheduleInput>;
