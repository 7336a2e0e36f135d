// What a VM's qcow2 overlay holds, read from its own cluster tables: the
// guest's data clusters (with their place in the file) and the clusters it
// zeroed. Capture needs exactly this; reading it here instead of starting
// `qemu-img map` takes a small capture's fixed cost from 10-20 ms to well
// under 1 ms (docs/PERFORMANCE.md, "VM runtime").
//
// Only overlays labforge made are read this way (qemu-img create, qcow2
// version 3, standard 8-byte L2 entries, no encryption, no external data
// file, nothing compressed). Anything else answers undefined and the caller
// asks `qemu-img map`, which knows every variant. Layout (qcow2 spec,
// docs/interop/qcow2.txt in QEMU): the header gives the cluster size, the
// virtual size and the L1 table; each L1 entry points at an L2 table of
// cluster-size / 8 entries; an L2 entry holds the host offset of a guest
// cluster (bits 9-55), bit 0 "reads as zeros" (version 3), bit 62
// "compressed".
import { open } from 'node:fs/promises';

export interface OverlayExtent {
  /** Guest offset and length. */
  start: number;
  length: number;
  /** The guest reads zeros here (nothing of the base shows through). */
  zero: boolean;
  /** For data: where the bytes are in the overlay file. */
  offset?: number;
}

export interface OverlayMap {
  virtualSize: number;
  /** What the overlay itself holds, in guest order; everything else comes from the base. */
  extents: OverlayExtent[];
}

const OFFSET_MASK = 0x00fffffffffffe00n;
const ZERO_FLAG = 1n;
const COMPRESSED = 1n << 62n;
// Incompatible features this reader may meet: dirty (bit 0) and the compression type (bit 3, which only
// matters for compressed clusters, refused below). Corrupt, external data file and extended L2 are not.
const READABLE_INCOMPAT = (1n << 0n) | (1n << 3n);

/**
 * The overlay's map, or undefined when it is not a plain overlay this reader knows. `backingSize`: the
 * base's size; what the overlay does not hold past it reads as zeros (the base has nothing there).
 */
export async function readOverlayMap(path: string, backingSize = Number.POSITIVE_INFINITY): Promise<OverlayMap | undefined> {
  const h = await open(path, 'r');
  try {
    const size = (await h.stat()).size;
    const header = Buffer.alloc(104);
    if ((await h.read(header, 0, header.length, 0)).bytesRead !== header.length) return undefined;
    if (header.readUInt32BE(0) !== 0x514649fb || header.readUInt32BE(4) !== 3) return undefined;
    const clusterBits = header.readUInt32BE(20);
    if (clusterBits < 9 || clusterBits > 21) return undefined;
    const clusterSize = 2 ** clusterBits;
    const virtualSize = Number(header.readBigUInt64BE(24));
    if (header.readUInt32BE(32) !== 0) return undefined; // encrypted
    if ((header.readBigUInt64BE(72) & ~READABLE_INCOMPAT) !== 0n) return undefined;
    const l1Size = header.readUInt32BE(36);
    const l1Offset = Number(header.readBigUInt64BE(40));
    const l2Entries = clusterSize / 8;
    if (l1Size * 8 > 32 << 20 || l1Offset + l1Size * 8 > size || l1Size < Math.ceil(virtualSize / (clusterSize * l2Entries))) return undefined;
    const l1 = Buffer.alloc(l1Size * 8);
    await h.read(l1, 0, l1.length, l1Offset);
    const extents: OverlayExtent[] = [];
    const add = (start: number, zero: boolean, offset: number | undefined) => {
      const length = Math.min(clusterSize, virtualSize - start);
      const last = extents[extents.length - 1];
      if (last && last.start + last.length === start && last.zero === zero && (zero || (last.offset as number) + last.length === offset)) {
        last.length += length;
      } else extents.push(zero ? { start, length, zero } : { start, length, zero, offset });
    };
    /** Unallocated from `start` for `length`: zeros past the base's end. */
    const hole = (start: number, length: number) => {
      const from = Math.max(start, backingSize);
      const to = Math.min(start + length, virtualSize);
      if (to > from) addRange(from, to - from);
    };
    const addRange = (start: number, length: number) => {
      const last = extents[extents.length - 1];
      if (last?.zero && last.start + last.length === start) last.length += length;
      else extents.push({ start, length, zero: true });
    };
    const l2 = Buffer.alloc(clusterSize);
    for (let i = 0; i < l1Size; i++) {
      const l2Offset = Number(l1.readBigUInt64BE(i * 8) & OFFSET_MASK);
      if (l2Offset === 0) {
        hole(i * l2Entries * clusterSize, l2Entries * clusterSize);
        continue;
      }
      if (l2Offset + clusterSize > size) return undefined;
      await h.read(l2, 0, clusterSize, l2Offset);
      for (let j = 0; j < l2Entries; j++) {
        const start = (i * l2Entries + j) * clusterSize;
        if (start >= virtualSize) break;
        const entry = l2.readBigUInt64BE(j * 8);
        if (entry === 0n) {
          hole(start, clusterSize);
          continue;
        }
        if (entry & COMPRESSED) return undefined;
        const offset = Number(entry & OFFSET_MASK);
        if (entry & ZERO_FLAG) add(start, true, undefined);
        else if (offset !== 0) {
          if (offset + clusterSize > size) return undefined;
          add(start, false, offset);
        }
      }
    }
    return { virtualSize, extents };
  } finally {
    await h.close();
  }
}
