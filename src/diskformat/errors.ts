// Error codes for refused disk images. Every refusal is a LabforgeError with
// HTTP status 400 and a message meant for the IT staff who uploaded the file.
import { LabforgeError } from '../errors.js';

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

export const diskError = (code: DiskErrorCode, message: string, target = 'image'): LabforgeError => new LabforgeError(400, code, message, target);

export const isDiskError = (e: unknown, code?: DiskErrorCode): e is LabforgeError =>
  e instanceof LabforgeError && (DISK_ERROR_CODES as readonly string[]).includes(e.code) && (code === undefined || e.code === code);
