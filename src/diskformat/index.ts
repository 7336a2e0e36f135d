export { DISK_ERROR_CODES, type DiskErrorCode, DiskFormatError, diskError, isDiskError } from './errors.js';
export {
  DEFAULT_MAX_VIRTUAL_SIZE,
  DISK_FORMATS,
  type DiskFormat,
  detectFormats,
  type InspectedDisk,
  type InspectOptions,
  type InspectResult,
  inspect,
} from './inspect/index.js';
export { type GuestReader, type GuestReaderLimits, openGuestReader } from './nbd.js';
export { type ConvertOptions, convert, crossCheckInfo, info, inspectAndCheck, QEMU_FORMAT, type QemuImgInfo, type QemuLimits } from './qemu-img.js';
