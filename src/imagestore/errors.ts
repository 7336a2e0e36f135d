// Errors of the image store (chunk store, packs, blob drivers, replication,
// maintenance). They carry a stable code and a message that says what to run
// or retry; the API gives them 500 unless src/api/errors.ts says otherwise.
import { DomainError } from '../lib/errors.js';

export type ImageStoreErrorCode =
  | 'InvalidParameter'
  | 'InvalidBlobKey'
  | 'UnknownBlobDriver'
  | 'InvalidBlobDriverOptions'
  | 'PackCorrupt'
  | 'ManifestCorrupt'
  | 'ChunkMissing'
  | 'ChunkCorrupt'
  | 'ReplicaSourceMissing'
  | 'DiskTruncated'
  | 'DiskSizeMismatch'
  | 'StoreDamaged'
  | 'InsufficientStorage'
  | 'TooManyOpenFiles'
  | 'OutOfMemory';

export class ImageStoreError extends DomainError {
  override name = 'ImageStoreError';
  constructor(code: ImageStoreErrorCode, message: string, target?: string) {
    super(code, message, target);
  }
}
