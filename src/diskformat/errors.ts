// Errors of the disk-format code. Every refused disk image is a
// DiskFormatError with one of DISK_ERROR_CODES, target "image" and a message
// meant for the IT staff who uploaded the file; the API answers them with 400.
import { DomainError } from '../lib/errors.js';

export const DISK_ERROR_CODES = [
  'DiskFormatAmbiguous',
  'DiskFormatMismatch',
  'DiskHasBackingFile',
  'DiskHasExternalDataFile',
  'DiskHasExternalExtent',
  'DiskUnsupportedFeature',
  'DiskUnsupportedSubformat',
  'DiskUnsupportedVersion',
  'DiskEncrypted',
  'DiskIsDifferencing',
  'DiskTooLarge',
  'DiskTruncated',
  'DiskCorrupt',
  'DiskInspectionFailed',
] as const;

export type DiskErrorCode = (typeof DISK_ERROR_CODES)[number];

/** A refused disk image (a DiskErrorCode), or InternalError when qemu-img is misused by labforge itself. */
export class DiskFormatError extends DomainError {
  override name = 'DiskFormatError';
  constructor(code: DiskErrorCode | 'InternalError', message: string, target?: string) {
    super(code, message, target);
  }
}

export const diskError = (code: DiskErrorCode, message: string, target = 'image'): DiskFormatError => new DiskFormatError(code, message, target);

/** Any error with a disk refusal code (the image store's DiskTruncated included). */
export const isDiskError = (e: unknown, code?: DiskErrorCode): e is DomainError =>
  e instanceof DomainError && (DISK_ERROR_CODES as readonly string[]).includes(e.code) && (code === undefined || e.code === code);
