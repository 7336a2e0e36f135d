// The base of every error labforge raises on purpose: a stable code (Azure's
// where one fits), a message written for the person who has to act, and
// optionally the target at fault and details. It knows nothing of HTTP: each
// layer raises its own subclass (ImageStoreError, DiskFormatError,
// ComputeError, WorkerError), and src/api/errors.ts alone decides which HTTP
// status a code gets. Operations record the same fields as their error.

export interface ErrorDetail {
  code: string;
  message: string;
  target?: string;
}

/** What every error shows to clients: the inside of the ARM envelope, and an operation's error. */
export interface ErrorBody {
  code: string;
  message: string;
  target?: string;
  details?: ErrorDetail[];
}

export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    readonly code: string,
    message: string,
    readonly target?: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
  }

  toJSON(): ErrorBody {
    return {
      code: this.code,
      message: this.message,
      ...(this.target ? { target: this.target } : {}),
      ...(this.details?.length ? { details: this.details } : {}),
    };
  }
}
