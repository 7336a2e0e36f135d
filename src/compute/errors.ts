// Errors of compute drivers: refused VM specs, VMs a host does not have, and
// why a VM could not start (the code of its VmCondition). The API gives them
// 500 unless src/api/errors.ts says otherwise.
import { DomainError } from '../lib/errors.js';

export class ComputeError extends DomainError {
  override name = 'ComputeError';
}
