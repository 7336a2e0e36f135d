// Errors of the operation runner itself (not of a handler), such as an
// operation abandoned after too many interrupted attempts. Like any
// DomainError, they are recorded as the operation's error {code, message}.
import { DomainError } from '../lib/errors.js';

export class WorkerError extends DomainError {
  override name = 'WorkerError';
}
