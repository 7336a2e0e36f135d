// Pack files: many chunks in one blob, so storing a chunk costs a share of one
// durable write instead of a durable file of its own. Creating and syncing a
// file per 1 MiB chunk costs about as much again as writing the chunk's bytes
// on these disks (docs/PERFORMANCE.md, "Pack files"); a pack of 32 chunks pays
// that once.
//
// A pack is written under a temporary name, chunk after chunk at 4 KiB-aligned
// offsets (direct I/O), then its index as a trailer, then it is synced and
// named: a pack under its name is complete and describes itself, so there is
// no separate index to keep in step and a crash leaves at most a temporary
// file. Layout of `packs/<id>.pack`:
//
//   chunk bytes, each at a multiple of 4096, zero-padded to the next one
//   index: {"format":"labforge-pack/1","chunks":[[digest, offset, length], ...]}
//          followed by spaces up to 32 bytes before the next multiple of 4096
//   footer (32 bytes): "labforge-pack/1 " and the index's offset as 16 hex digits
//
// Chunks are found through an in-memory map built from the trailers when the
// store is first used; a chunk's bytes are checked against its digest on every
// read, as for chunk files.
import { randomBytes } from 'node:crypto';
import type { BlobDriver } from './blob-driver.js';
import { ImageStoreError } from './errors.js';

export const PACK_FORMAT = 'labforge-pack/1';
const MAGIC = `${PACK_FORMAT} `;
const FOOTER = 32;
const ALIGN = 4096;
const DIGEST = /^[0-9a-f]{64}$/;

export const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
export const newPackKey = () => `packs/${randomBytes(12).toString('hex')}.pack`;
export const isPackKey = (key: string) => /^packs\/[0-9a-f]{24}\.pack$/.test(key);

export interface PackEntry {
  digest: string;
  offset: number;
  length: number;
}

/** The trailer for a pack whose chunks end at `indexOffset` (a multiple of 4096): index, padding, footer. */
export function encodeTrailer(entries: PackEntry[], indexOffset: number): Buffer {
  const json = JSON.stringify({ format: PACK_FORMAT, chunks: entries.map((e) => [e.digest, e.offset, e.length]) });
  const body = Buffer.from(json);
  const total = align(body.length + FOOTER);
  const out = Buffer.alloc(total, 0x20);
  body.copy(out);
  out.write(MAGIC + indexOffset.toString(16).padStart(16, '0'), total - FOOTER, 'latin1');
  return out;
}

const unreadable = (key: string, why: string) =>
  new ImageStoreError('PackCorrupt', `Pack ${key} cannot be read (${why}). Run \`labforge store verify\` to repair its chunks from another region.`);

/** Reads a pack's index from its trailer; a pack whose trailer is damaged is an error naming it. */
export async function readPackIndex(driver: BlobDriver, key: string, size: number): Promise<PackEntry[]> {
  if (size < FOOTER || size % ALIGN) throw unreadable(key, `its size ${size} is not a whole number of 4 KiB blocks`);
  const footer = await driver.getRange(key, size - FOOTER, FOOTER);
  if (!footer || footer.length !== FOOTER) throw unreadable(key, 'it is shorter than its footer');
  const text = footer.toString('latin1');
  const hex = text.slice(MAGIC.length);
  if (!text.startsWith(MAGIC) || !/^[0-9a-f]{16}$/.test(hex)) throw unreadable(key, 'its footer is not a labforge pack footer');
  const indexOffset = Number.parseInt(hex, 16);
  if (indexOffset % ALIGN || indexOffset > size - FOOTER) throw unreadable(key, 'its footer points outside the pack');
  const raw = await driver.getRange(key, indexOffset, size - FOOTER - indexOffset);
  let parsed: { format?: unknown; chunks?: unknown };
  try {
    parsed = JSON.parse((raw ?? Buffer.alloc(0)).toString('utf8'));
  } catch {
    throw unreadable(key, 'its index is not valid JSON');
  }
  if (parsed.format !== PACK_FORMAT || !Array.isArray(parsed.chunks)) throw unreadable(key, `its index is not in format ${PACK_FORMAT}`);
  const entries: PackEntry[] = [];
  for (const c of parsed.chunks as unknown[]) {
    const [digest, offset, length] = Array.isArray(c) ? c : [];
    const ok =
      typeof digest === 'string' &&
      DIGEST.test(digest) &&
      Number.isSafeInteger(offset) &&
      Number.isSafeInteger(length) &&
      offset % ALIGN === 0 &&
      length > 0 &&
      offset + length <= indexOffset;
    if (!ok) throw unreadable(key, `its index has an entry outside the pack: ${JSON.stringify(c).slice(0, 100)}`);
    entries.push({ digest, offset, length });
  }
  return entries;
}

/**
 * One pack being written: `add` places a chunk at the next aligned offset and
 * writes it (several at once); `seal` waits for them, appends the trailer and
 * commits the blob under its name.
 */
export class PackBuilder {
  readonly key = newPackKey();
  readonly entries: PackEntry[] = [];
  readonly started = Date.now();
  size = 0;
  private readonly writer;
  private readonly writes: Promise<void>[] = [];
  private failure: { err: unknown } | undefined;

  constructor(driver: BlobDriver) {
    this.writer = driver.openWriter(this.key);
    // Failures surface through add/seal; this keeps an early failure from being reported as unhandled.
    this.writer.catch(() => undefined);
  }

  add(digest: string, data: Uint8Array): Promise<void> {
    const offset = this.size;
    this.size += align(data.length);
    this.entries.push({ digest, offset, length: data.length });
    const w = this.writer.then((h) => h.write(data, offset));
    this.writes.push(
      w.catch((err) => {
        this.failure ??= { err };
      }),
    );
    return w;
  }

  async seal(): Promise<PackEntry[]> {
    await Promise.all(this.writes);
    if (this.failure) throw this.failure.err;
    const h = await this.writer;
    await h.write(encodeTrailer(this.entries, this.size), this.size);
    await h.commit();
    return this.entries;
  }

  async abort(): Promise<void> {
    await Promise.all(this.writes);
    const h = await this.writer.catch(() => undefined);
    await h?.abort();
  }
}
