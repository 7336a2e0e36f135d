// What every Azure Resource Manager answer shares: systemData and the error
// envelope {"error":{code,message,target,details}}. The type of an error's
// body is the one every layer raises (src/lib/errors.ts); the schemas here
// describe it on the wire.
import Type, { type Static } from 'typebox';
import type { ErrorBody as ErrorBodyType, ErrorDetail as ErrorDetailType } from '../lib/errors.js';

/** Who created and last changed a resource, and when (ISO 8601). */
export const SystemData = Type.Object({
  createdBy: Type.Optional(Type.String()),
  createdByType: Type.Optional(Type.String()),
  createdAt: Type.Optional(Type.String()),
  lastModifiedBy: Type.Optional(Type.String()),
  lastModifiedByType: Type.Optional(Type.String()),
  lastModifiedAt: Type.Optional(Type.String()),
});
export type SystemData = Static<typeof SystemData>;

/** One problem of a refused request: its code, what to fix, and where. */
export const ErrorDetail = Type.Unsafe<ErrorDetailType>(
  Type.Object({ code: Type.String(), message: Type.String(), target: Type.Optional(Type.String()) }, { additionalProperties: true }),
);
export type ErrorDetail = ErrorDetailType;

/** The inside of the ARM error envelope, and an operation's error. */
export const ErrorBody = Type.Unsafe<ErrorBodyType>(
  Type.Object(
    {
      code: Type.String({ description: "Azure's error code where one fits (ResourceNotFound, InvalidParameter, Conflict, …)" }),
      message: Type.String({ description: 'What was wrong and what to do, for people' }),
      target: Type.Optional(Type.String({ description: 'The field or resource at fault' })),
      details: Type.Optional(Type.Array(ErrorDetail)),
    },
    { additionalProperties: true },
  ),
);
export type ErrorBody = ErrorBodyType;

/** Every 4xx and 5xx answer: `{"error": {code, message, target, details}}`. */
export const ArmError = Type.Object({ error: ErrorBody }, { description: 'The ARM error envelope' });
export type ArmError = Static<typeof ArmError>;
