// Labforge.Core/operations: the status of long-running operations (the URL
// in Azure-AsyncOperation), recent operations and cancelling one.
import Type, { type Static } from 'typebox';
import { ErrorBody } from '../arm.js';
import { Nullable, StringEnum } from '../schema.js';

export const OPERATION_STATUSES = ['InProgress', 'Succeeded', 'Failed', 'Canceled'] as const;
export type OperationStatus = (typeof OPERATION_STATUSES)[number];

export const Operation = Type.Object({
  id: Type.String(),
  name: Type.String(),
  status: StringEnum(OPERATION_STATUSES),
  startTime: Type.String(),
  endTime: Type.Optional(Type.String()),
  percentComplete: Type.Number(),
  error: Type.Optional(ErrorBody),
  properties: Type.Object({
    kind: Type.String(),
    resourceId: Type.String(),
    statusMessage: Nullable(Type.String()),
    createdBy: Type.String(),
    createdAt: Type.String(),
    attempts: Type.Integer(),
    cancelRequested: Type.Boolean(),
    result: Type.Optional(Type.Unknown({ description: "What the operation produced (a capture's block counts, a verify or GC report…)" })),
  }),
});
export type Operation = Static<typeof Operation>;
