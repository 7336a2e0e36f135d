// The image-store (blob) drivers by name: a region's imageStore.driver picks
// one, with imageStore.options as that driver's options. A new driver (S3, for
// example) is one more entry here.

import type { BlobDriver } from '../blob-driver.js';
import { ImageStoreError } from '../errors.js';
import { localBlobDriver } from './local.driver.js';

export type BlobDriverFactory = (options: Record<string, unknown>, context: { region: string }) => BlobDriver;

const BLOB_DRIVERS = {
  /** Files under one directory (options.path). */
  local: localBlobDriver,
} as const satisfies Record<string, BlobDriverFactory>;

export type BlobDriverName = keyof typeof BLOB_DRIVERS;

/** The names imageStore.driver accepts. */
export const BLOB_DRIVER_NAMES = Object.keys(BLOB_DRIVERS) as BlobDriverName[];

const isDriverName = (name: string): name is BlobDriverName => Object.hasOwn(BLOB_DRIVERS, name);

/** The blob driver a region's image store names, made from its options. */
export function createBlobDriver(region: string, config: { driver: string; options: Record<string, unknown> }): BlobDriver {
  if (!isDriverName(config.driver)) {
    throw new ImageStoreError(
      'UnknownBlobDriver',
      `Region '${region}' names image-store driver '${config.driver}', which labforge does not have. Use one of: ${BLOB_DRIVER_NAMES.join(', ')}.`,
    );
  }
  return BLOB_DRIVERS[config.driver](config.options, { region });
}
