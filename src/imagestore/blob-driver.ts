// The interface every image-store backend implements (a local directory now,
// S3-compatible object storage later). The drivers by name: drivers/index.ts.
import { ImageStoreError } from './errors.js';

export interface BlobInfo {
  key: string;
  size: number;
  /** Last write or touch, in ms since the epoch (garbage collection spares recent blobs). */
  modifiedMs?: number;
}

export interface PutOptions {
  /** Replace an existing blob (manifests). Chunks never pass this: a chunk that exists is already right. */
  overwrite?: boolean;
  /**
   * Many puts in a row (chunks of one import): the content is durable when put
   * returns, but the blob's name may be lost in a crash until the next sync().
   * Callers sync before writing what refers to the blobs (the manifest).
   */
  batch?: boolean;
}

/** A blob written in parts (a pack of chunks): nothing is visible under its key until commit. */
export interface BlobWriter {
  /** Writes `data` at `position`, a multiple of 4096; the space up to the next multiple of 4096 may be zero-filled. Several writes may be in flight. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Makes the content durable and gives the blob its name; the name itself is durable after the next sync(), as for batched puts. */
  commit(): Promise<void>;
  /** Discards what was written. */
  abort(): Promise<void>;
}

/**
 * A flat namespace of immutable-once-written blobs, keyed by `/`-separated
 * names of `[A-Za-z0-9._-]` segments. Writes are atomic: a reader sees the
 * whole blob or nothing, also after a crash.
 */
export interface BlobDriver {
  readonly kind: string;
  /** Stores `data` under `key`; returns false when the key exists and `overwrite` is not set (the existing blob is only touched, so garbage collection spares it). */
  put(key: string, data: Uint8Array, opts?: PutOptions): Promise<boolean>;
  /** The blob's bytes, or undefined when there is none. */
  get(key: string): Promise<Buffer | undefined>;
  /** `length` bytes of the blob from `offset` (fewer at its end), or undefined when there is no blob. */
  getRange(key: string, offset: number, length: number): Promise<Buffer | undefined>;
  /** Starts a blob written in parts under `key`, which must not exist yet. */
  openWriter(key: string): Promise<BlobWriter>;
  /** Size of the blob, or undefined when there is none. */
  stat(key: string): Promise<BlobInfo | undefined>;
  /** Removes the blob; returns whether it existed. */
  delete(key: string): Promise<boolean>;
  /** Every blob whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<BlobInfo>;
  /** Renames a blob (quarantine of a corrupt chunk); returns whether `from` existed. */
  move(from: string, to: string): Promise<boolean>;
  /** Makes the names of every batched put so far durable. */
  sync(): Promise<void>;
  /** Removes leftovers of writes interrupted by a crash that are older than `olderThanMs`; returns how many. */
  cleanupTemporary(olderThanMs: number): Promise<number>;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Refuses keys that could escape the store (`..`, absolute paths, empty segments). */
export function checkKey(key: string): void {
  const parts = key.split('/');
  if (key.length === 0 || key.length > 1024 || parts.some((p) => !SEGMENT.test(p) || p === '.' || p === '..')) {
    throw new ImageStoreError('InvalidBlobKey', `'${key}' is not a valid image-store key.`);
  }
}
