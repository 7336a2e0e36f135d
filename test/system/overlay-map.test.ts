// Capture reads what a VM's overlay holds from the overlay's own cluster
// tables: the answer must be exactly what `qemu-img map` says the overlay
// holds (its depth-0 extents), for data, zeroed and discarded clusters, and
// anything it cannot read must send capture back to qemu-img.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { MapExtent } from '../../src/compute/capture.js';
import { readOverlayMap } from '../../src/compute/overlay-map.js';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'labforge-overlay-map-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** qemu-img map's depth-0 extents, adjacent ones merged, in the reader's shape. */
function qemuView(overlay: string) {
  const all = JSON.parse(execFileSync('qemu-img', ['map', '-f', 'qcow2', '--output=json', overlay]).toString()) as MapExtent[];
  const out: Array<{ start: number; length: number; zero: boolean; offset?: number }> = [];
  for (const e of all.filter((x) => x.depth === 0 && (x.zero || x.data))) {
    const last = out[out.length - 1];
    if (last && last.start + last.length === e.start && last.zero === e.zero && (e.zero || (last.offset as number) + last.length === e.offset)) {
      last.length += e.length;
    } else out.push(e.zero ? { start: e.start, length: e.length, zero: true } : { start: e.start, length: e.length, zero: false, offset: e.offset });
  }
  return { virtualSize: all.reduce((n, e) => Math.max(n, e.start + e.length), 0), extents: out };
}

function overlay(name: string, size: string, commands: string[], createOptions: string[] = [], overlaySize?: string) {
  const base = join(dir, `${name}-base.raw`);
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', base, size]);
  execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 8M', base]);
  const file = join(dir, `${name}.qcow2`);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, ...createOptions, file, ...(overlaySize ? [overlaySize] : [])]);
  if (commands.length) execFileSync('qemu-io', ['-f', 'qcow2', ...commands.flatMap((c) => ['-c', c]), file]);
  return file;
}

describe('overlay map', () => {
  it('reads an untouched overlay as holding nothing', async () => {
    const file = overlay('empty', '64M', []);
    expect(await readOverlayMap(file, 64 * MiB)).toEqual({ virtualSize: 64 * MiB, extents: [] });
  });

  it('finds data, zeroed and discarded clusters exactly where qemu-img map does', async () => {
    const file = overlay('mixed', '3G', [
      'write -P 0xab 1M 3M',
      // 4 KiB inside a cluster: QEMU copies the rest of the cluster from the base.
      'write -P 0xcd 9437184 4096',
      'write -z 16M 2M',
      'write -z -u 20M 1M',
      'write -P 0xef 2G 1M',
      'discard 2M 64k',
      // The last cluster of the disk.
      'write -P 0x42 3145662k 64k',
    ]);
    const ours = await readOverlayMap(file, 3 * 1024 * MiB);
    expect(ours).toEqual(qemuView(file));
    expect(ours?.extents.some((e) => e.zero)).toBe(true);
    expect(ours?.extents.filter((e) => !e.zero).length).toBeGreaterThanOrEqual(3);
  });

  it('answers for an overlay larger than its base and with 2 MiB clusters', async () => {
    const file = overlay('big', '16M', ['write -P 0x01 7M 2M', 'write -P 0x02 20M 1M'], ['-o', 'cluster_size=2M'], '24M');
    // Past the base's 16 MiB, what the overlay does not hold reads as zeros.
    expect(await readOverlayMap(file, 16 * MiB)).toEqual(qemuView(file));
    expect((await readOverlayMap(file, 16 * MiB))?.virtualSize).toBe(24 * MiB);
  });

  it('leaves what it does not read to qemu-img: subclusters, compressed clusters, other formats', async () => {
    expect(await readOverlayMap(overlay('ext', '16M', ['write -P 0x01 0 1M'], ['-o', 'extended_l2=on']))).toBeUndefined();
    expect(await readOverlayMap(overlay('comp', '16M', ['write -c -P 0x01 0 64k']))).toBeUndefined();
    const v2 = overlay('compat', '16M', ['write -P 0x01 0 1M'], ['-o', 'compat=0.10']);
    expect(await readOverlayMap(v2)).toBeUndefined();
    const raw = join(dir, 'plain.raw');
    writeFileSync(raw, Buffer.alloc(MiB));
    expect(await readOverlayMap(raw)).toBeUndefined();
  });
});
