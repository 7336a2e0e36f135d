// Errors of the service layer. Services throw LabforgeError: a DomainError
// (src/lib/errors.ts) that also names its HTTP status, with an Azure error
// code and a message written for the person who has to fix the request.
// Lower layers (imagestore, diskformat, compute, operations) never use it:
// they raise their own error classes, whose status src/api/errors.ts decides.
import { DomainError, type ErrorDetail } from './lib/errors.js';

export type { ErrorDetail } from './lib/errors.js';

export class LabforgeError extends DomainError {
  override name = 'LabforgeError';
  constructor(
    readonly status: number,
    code: string,
    message: string,
    target?: string,
    details?: ErrorDetail[],
  ) {
    super(code, message, target, details);
  }
}

export const invalidParameter = (message: string, target?: string) => new LabforgeError(400, 'InvalidParameter', message, target);
export const badRequest = (code: string, message: string, target?: string) => new LabforgeError(400, code, message, target);
export const notFound = (code: string, message: string, target?: string) => new LabforgeError(404, code, message, target);
export const conflict = (message: string, target?: string, code = 'Conflict') => new LabforgeError(409, code, message, target);
export const preconditionFailed = (message: string) => new LabforgeError(412, 'PreconditionFailed', message);
export const forbidden = (message: string) => new LabforgeError(403, 'AuthorizationFailed', message);
export const unauthorized = (message: string) => new LabforgeError(401, 'AuthenticationFailed', message);
