/**
 * labforge image store: one content-addressed chunk store per region.
 *
 * On-disk format (version 1), inside a region's blob store:
 *
 *   packs/<id>.pack             many chunks and their index (packs.ts): each
 *                               chunk at a multiple of 4096, then the index
 *                               {"format":"labforge-pack/1","chunks":[[digest,
 *                               offset, length], ...]} padded with spaces, then
 *                               a 32-byte footer "labforge-pack/1 " + the
 *                               index's offset in 16 hex digits.
 *   chunks/<aa>/<digest>        one chunk in a file of its own (stores written
 *                               before packs; read, verified and collected,
 *                               never written any more).
 *   manifests/<name>.json       a version's manifest (below), written last: a
 *                               manifest present means every chunk it names is
 *                               present in this region (the commit point).
 *   quarantine/<digest>.bad     chunks that failed verification;
 *   quarantine/<id>.pack.bad    packs whose index could not be read.
 *
 * A chunk is one block of guest data; <digest> is the lowercase hex SHA-256 of
 * its bytes. A disk is split into fixed-size blocks of its guest address space
 * (`blockSize`, 1 MiB by default; the last block may be shorter). A block of
 * all zeros is not stored; its manifest entry is null. Every other block is
 * stored once per region whatever the number of versions or disks using it.
 *
 * Manifest: {"format": "labforge-manifest/1", "disks": [{"name": "os" |
 * "data-<lun>", "virtualSize": bytes, "blockSize": bytes, "blocks": [digest |
 * null, ...]}]}. Blocks past the end of `blocks` are zeros, so an empty disk of
 * any size has `"blocks": []`.
 *
 * Writes: a pack is written under a temporary name (direct I/O), fsynced,
 * linked to its name and its directory fsynced before a manifest names its
 * chunks, so a named pack is always whole — see drivers/local.driver.ts and
 * packs.ts. Inserting a chunk the region has is a no-op. Reads re-hash each
 * chunk and refuse one whose content does not match its name.
 *
 * Why SHA-256 and 1 MiB: see docs/PERFORMANCE.md ("Chunk size and hash"). A
 * chunk's name must be collision-resistant because disks are untrusted: with a
 * non-cryptographic hash a crafted disk could make two different blocks share
 * a name and corrupt other people's images.
 */
export type { BlobDriver } from './blob-driver.js';
export { ChunkBatch, ChunkStore, DEFAULT_BLOCK_SIZE, type DiskManifest, type Manifest } from './chunk-store.js';
export { createBlobDriver } from './drivers/index.js';
