// `labforge host …`: the hypervisor hosts VMs run on, and how each accelerates
// them (KVM where it was proven to work, software emulation otherwise, and why).
import type { Command } from 'commander';
import type { Host } from '../../contract/index.js';
import { loadContext } from '../context.js';
import { type OutputOptions, printFields, printJson, printTable, shortTime, withOutput } from '../output.js';

const accelText = (h: Host) => {
  const a = h.properties.acceleration;
  if (!a) return undefined;
  return a.accelerator === 'kvm' ? 'KVM' : a.kvm === 'broken' ? 'software emulation (KVM broken)' : 'software emulation';
};

function printHost(h: Host): void {
  const p = h.properties;
  const a = p.acceleration;
  printFields([
    ['Name', h.name],
    ['State', p.stateReason ? `${p.state}: ${p.stateReason}` : p.state],
    ['Compute driver', p.computeDriver],
    ['Acceleration', accelText(h)],
    ['Why', a?.reason],
    [
      'Checked',
      a ? `${shortTime(a.checkedAt)} (${a.source === 'runtime' ? 'a VM failed under KVM' : a.source === 'config' ? 'configuration' : 'probe'})` : undefined,
    ],
    ['VMs', `${p.virtualMachines.total} (${p.virtualMachines.running} running, ${p.virtualMachines.failed} failed)`],
  ]);
}

export function registerHost(program: Command): void {
  const host = program.command('host').description('Hypervisor hosts and how each runs VMs (lab staff)');

  withOutput(host.command('list').description('List hosts with their state and acceleration')).action(async (opts: OutputOptions) => {
    const hosts = await loadContext().client.listHosts();
    if (opts.output === 'json') return printJson(hosts);
    printTable(
      ['NAME', 'STATE', 'DRIVER', 'ACCELERATION', 'VMS', 'RUNNING', 'FAILED'],
      hosts.map((h) => [
        h.name,
        h.properties.state,
        h.properties.computeDriver,
        accelText(h),
        h.properties.virtualMachines.total,
        h.properties.virtualMachines.running,
        h.properties.virtualMachines.failed,
      ]),
      'No hosts.',
    );
  });

  withOutput(host.command('show').argument('[name]', 'host name', 'local').description('Show a host: state, acceleration and why, VMs')).action(
    async (name: string, opts: OutputOptions) => {
      const h = await loadContext().client.getHost(name);
      if (opts.output === 'json') return printJson(h);
      printHost(h);
    },
  );

  withOutput(
    host
      .command('check')
      .argument('[name]', 'host name', 'local')
      .description('Test KVM on a host again instead of using the cached verdict (admins; after fixing KVM, or a kernel or QEMU update)'),
  ).action(async (name: string, opts: OutputOptions) => {
    const h = await loadContext().client.checkHostAcceleration(name);
    if (opts.output === 'json') return printJson(h);
    printHost(h);
  });
}
