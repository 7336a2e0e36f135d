// The conformance suite every compute driver must pass (qemu now, KubeVirt
// later). The target gives a factory for a driver and a bootable-or-not disk;
// these cases need no guest OS: they check the VM lifecycle the driver owns.
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ComputeDriver, VmSpec } from '../../src/compute/compute-driver.js';

export interface ComputeTarget {
  /** A driver; called twice with the same state folder to simulate a server restart. */
  create(): ComputeDriver;
  /** A disk the VM can use (a new copy each call). */
  disk(): Promise<{ path: string; format: 'qcow2' | 'raw' }>;
}

export function runComputeDriverConformance(name: string, target: ComputeTarget): void {
  describe(`compute driver conformance: ${name}`, () => {
    const spec = async (id: string, extra: Partial<VmSpec> = {}): Promise<VmSpec> => ({
      id,
      vcpus: 1,
      memoryMiB: 128,
      hyperVGeneration: 'V1',
      disks: [await target.disk()],
      forward: { guestPort: 22, hostPort: 0 },
      ...extra,
    });

    it('says how it accelerates VMs, and why', async () => {
      const a = await target.create().acceleration();
      expect(['kvm', 'tcg']).toContain(a.accelerator);
      expect(a.kvm === 'works').toBe(a.accelerator === 'kvm');
      expect(a.reason.length).toBeGreaterThan(20);
      expect(Number.isNaN(Date.parse(a.checkedAt))).toBe(false);
    });

    it('creates, starts, stops (forcing a guest that ignores the power button), restarts and deletes a VM', async () => {
      const d = target.create();
      expect((await d.create(await spec('life-1'))).state).toBe('Stopped');
      const running = await d.start('life-1');
      expect(running.state).toBe('Running');
      expect(running.pid).toBeGreaterThan(0);
      expect(running.hostPort).toBeGreaterThan(0);
      // Starting a running VM changes nothing.
      expect((await d.start('life-1')).pid).toBe(running.pid);
      const t0 = Date.now();
      const stopped = await d.stop('life-1', { timeoutMs: 1500 });
      expect(stopped.state).toBe('Stopped');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
      const again = await d.restart('life-1');
      expect(again.state).toBe('Running');
      expect(again.pid).not.toBe(running.pid);
      await d.delete('life-1');
      expect(await d.status('life-1')).toBeUndefined();
      expect((await d.list()).map((v) => v.id)).not.toContain('life-1');
    }, 60_000);

    it('finds running VMs again after a restart of the server', async () => {
      const first = target.create();
      await first.create(await spec('keep-1'));
      const started = await first.start('keep-1');
      const second = target.create();
      const found = (await second.list()).find((v) => v.id === 'keep-1');
      expect(found).toMatchObject({ state: 'Running', pid: started.pid, hostPort: started.hostPort });
      expect((await second.stop('keep-1', { force: true })).state).toBe('Stopped');
      await second.delete('keep-1');
    }, 60_000);

    it('boots V2 (UEFI) VMs as well as V1 (BIOS)', async () => {
      const d = target.create();
      await d.create(await spec('uefi-1', { hyperVGeneration: 'V2' }));
      expect((await d.start('uefi-1')).state).toBe('Running');
      await d.delete('uefi-1');
    }, 60_000);

    it('reports what a running VM does, pauses it for a consistent capture and resumes it; a stopped VM needs no pause', async () => {
      const d = target.create();
      await d.create(await spec('pause-1'));
      expect(await d.pause('pause-1')).toBe(false);
      expect(await d.activity('pause-1')).toBeUndefined();
      const running = await d.start('pause-1');
      // What auto-shutdown sees of a running VM: its CPU time and the connections through its port forward.
      await new Promise((r) => setTimeout(r, 500));
      const act = await d.activity('pause-1');
      expect(act?.cpuSeconds).toBeGreaterThan(0);
      expect(act?.connections).toBe(0);
      expect(await d.pause('pause-1')).toBe(true);
      await d.resume('pause-1');
      const after = await d.status('pause-1');
      expect(after).toMatchObject({ state: 'Running', pid: running.pid });
      await d.delete('pause-1');
    }, 60_000);

    it('says why a VM failed: a start whose disk is gone reads Failed with DiskMissing until a stop acknowledges it', async () => {
      const d = target.create();
      const s = await spec('gone-1');
      await d.create(s);
      rmSync((s.disks[0] as { path: string }).path);
      await expect(d.start('gone-1')).rejects.toMatchObject({ code: 'DiskMissing' });
      const failed = await d.status('gone-1');
      expect(failed).toMatchObject({ state: 'Failed', error: { code: 'DiskMissing' } });
      expect(failed?.error?.message).toMatch(/disk .*missing.*Reimage/);
      expect((await d.stop('gone-1')).state).toBe('Stopped');
      await d.delete('gone-1');
    });

    it('refuses unknown VMs and missing disks with clear errors', async () => {
      const d = target.create();
      await expect(d.start('nobody')).rejects.toMatchObject({ code: 'ResourceNotFound' });
      await expect(d.create({ ...(await spec('bad-1')), disks: [{ path: '/nonexistent/disk.qcow2', format: 'qcow2' }] })).rejects.toThrow(/does not exist/);
    });
  });
}
