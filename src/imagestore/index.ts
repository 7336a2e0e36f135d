/**
 * labforge image store: one content-addressed chunk store per region.
 *
 * On-disk format (version 1), inside a region's blob store:
 *
 *   chunks/<aa>/<digest>        one block of guest data; <digest> is the
 *                               lowercase hex SHA-256 of the block's bytes and
 *                               <aa> its first two characters (256 fan-out
 *                               directories keep directories small).
 *   manifests/<name>.json       a version's manifest (below), written last: a
 *                               manifest present means every chunk it names is
 *                               present in this region (the commit point).
 *   quarantine/<digest>.bad     chunks that failed verification.
 *
 * A disk is split into fixed-size blocks of its guest address space
 * (`blockSize`, 1 MiB by default; the last block may be shorter). A block of
 * all zeros is not stored; its manifest entry is null. Every other block is
 * stored once per region whatever the number of versions or disks using it.
 *
 * Manifest: {"format": "labforge-manifest/1", "disks": [{"name": "os" |
 * "data-<lun>", "virtualSize": bytes, "blockSize": bytes, "blocks": [digest |
 * null, ...]}]}. Blocks past the end of `blocks` are zeros, so an empty disk of
 * any size has `"blocks": []`.
 *
 * Writes: blobs are written to a temporary name (with direct I/O from 64 KiB), fsynced, linked into place
 * (never replacing an existing chunk: inserting an existing chunk is a no-op)
 * and the directory fsynced — see drivers/local.driver.ts. Reads re-hash each
 * chunk and refuse one whose content does not match its name.
 *
 * Why SHA-256 and 1 MiB: see docs/PERFORMANCE.md ("Chunk size and hash"). A
 * chunk's name must be collision-resistant because disks are untrusted: with a
 * non-cryptographic hash a crafted disk could make two different blocks share
 * a name and corrupt other people's images.
 */
export { type BlobDriver, createBlobDriver, registerBlobDriver } from './blob-driver.js';
export { ChunkStore, DEFAULT_BLOCK_SIZE, type DiskManifest, type Manifest } from './chunk-store.js';

import './drivers/local.driver.js';
