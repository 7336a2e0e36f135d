// The long work of Compute VMs, run by operations: creating a VM (its disk,
// then its first boot) and power actions. Each undoes what it made when it
// fails, and leaves the VM's state with the reason the driver gave.
import type { OperationHandler } from '../../operations/worker.js';
import { type PowerAction, VM_CREATE, VM_POWER, type VmService } from '../vm.service.js';

const DOING: Record<PowerAction, string> = {
  start: 'Starting the VM',
  stop: 'Stopping the VM',
  restart: 'Restarting the VM',
  reimage: 'Reimaging the VM: a fresh disk from its image version',
  redeploy: 'Redeploying the VM: a new QEMU process on the same disk',
};

export function vmJobs(vms: VmService): OperationHandler<{ vmKey: string; action?: PowerAction }>[] {
  return [
    {
      kind: VM_CREATE,
      run: async (ctx) => {
        await ctx.step('disk', () => vms.provisionDisk(ctx.input.vmKey, (pct, msg) => ctx.progress(pct, msg)));
        await ctx.step('start', async () => {
          await vms.startNow(ctx.input.vmKey);
        });
        const status = await vms.driver.status(ctx.input.vmKey);
        await ctx.complete('Succeeded', async (tx) => {
          await vms.settleCreated(tx, ctx.input.vmKey, status);
        });
      },
      onCancel: async (ctx, tx) => {
        await vms.deleteRecords(tx, [ctx.input.vmKey]);
        await vms.removeFiles([ctx.input.vmKey]).catch(() => undefined);
        await vms.collectBases().catch(() => undefined);
      },
      onFailure: async (ctx, tx, error) => {
        // Undo: nothing of a VM that never came up keeps running or takes disk space.
        await vms.removeFiles([ctx.input.vmKey]).catch(() => undefined);
        await vms.markFailed(tx, ctx.input.vmKey, error);
      },
    },
    {
      kind: VM_POWER,
      run: async (ctx) => {
        const action = ctx.input.action ?? 'start';
        await ctx.progress(10, DOING[action]);
        const status = await vms.applyPower(ctx.input.vmKey, action);
        await ctx.complete('Succeeded', async (tx) => {
          await vms.settle(tx, ctx.input.vmKey, status, null);
        });
      },
      onFailure: async (ctx, tx, error) => {
        await vms.settle(tx, ctx.input.vmKey, await vms.driver.status(ctx.input.vmKey).catch(() => undefined), error);
      },
    },
  ];
}
