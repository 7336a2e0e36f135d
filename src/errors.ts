// One error type for every refusal. Services throw it with an Azure error
// code and a message written for the person who has to fix the request; the
// API layer renders it as the ARM error envelope.

export interface ErrorDetail {
  code: string;
  message: string;
  target?: string;
}

export class LabforgeError extends Error {
  override name = 'LabforgeError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly target?: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
  }

  toJSON(): { code: string; message: string; target?: string; details?: ErrorDetail[] } {
    return {
      code: this.code,
      message: this.message,
      ...(this.target ? { target: this.target } : {}),
      ...(this.details?.length ? { details: this.details } : {}),
    };
  }
}

export const invalidParameter = (message: string, target?: string) => new LabforgeError(400, 'InvalidParameter', message, target);
export const badRequest = (code: string, message: string, target?: string) => new LabforgeError(400, code, message, target);
export const notFound = (code: string, message: string, target?: string) => new LabforgeError(404, code, message, target);
export const conflict = (message: string, target?: string, code = 'Conflict') => new LabforgeError(409, code, message, target);
export const preconditionFailed = (message: string) => new LabforgeError(412, 'PreconditionFailed', message);
export const forbidden = (message: string) => new LabforgeError(403, 'AuthorizationFailed', message);
export const unauthorized = (message: string) => new LabforgeError(401, 'AuthenticationFailed', message);
