// Microsoft.Compute/virtualMachines (the subset labforge runs: VMs from
// gallery images, power actions, generalize, console tickets).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ConsoleUrls, InstanceView, NoBody, Page, ROLES, VirtualMachine, VirtualMachineInput } from '../../contract/index.js';
import { LabforgeError } from '../../errors.js';
import type { Services } from '../../services/index.js';
import type { VirtualMachine as Vm } from '../../services/vm.service.js';
import { ACCEPTED, DELETED, lroHeaders, page, pageQuery, preconditions } from '../arm/arm.js';
import { decodeCustomData } from './custom-data.js';
import { consoleUrls, instanceView, renderVm } from './render.js';

const READ = { apiFamily: 'virtualMachines', roles: ROLES } as const;
const CREATE = { apiFamily: 'virtualMachines', roles: ['admin', 'creator'] } as const;
const VMS = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute/virtualMachines';
const VmParams = Type.Object({ sub: Type.String(), rg: Type.String(), vm: Type.String() });

export function vmRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const publicUrl = s.config.publicUrl;
    const pageSize = s.config.api.defaultPageSize;
    const vmKeyOf = (v: Vm) => v.key;
    const render = (v: Vm) => renderVm(v, s.vms.connectHost);

    app.get(
      '/subscriptions/:sub/providers/Microsoft.Compute/virtualMachines',
      {
        config: READ,
        schema: {
          tags: ['virtualMachines'],
          summary: 'List VMs in a subscription (students see their own)',
          params: Type.Object({ sub: Type.String() }),
          response: { 200: Page(VirtualMachine) },
        },
      },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.vms.list(req.principal, req.params.sub, undefined, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, vmKeyOf, render);
      },
    );
    app.get(
      VMS,
      {
        config: READ,
        schema: {
          tags: ['virtualMachines'],
          summary: 'List VMs in a resource group',
          params: Type.Object({ sub: Type.String(), rg: Type.String() }),
          response: { 200: Page(VirtualMachine) },
        },
      },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.vms.list(req.principal, req.params.sub, req.params.rg, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, vmKeyOf, render);
      },
    );
    app.get(
      `${VMS}/:vm`,
      { config: READ, schema: { tags: ['virtualMachines'], summary: 'Get a VM with its power state', params: VmParams, response: { 200: VirtualMachine } } },
      async (req, reply) => {
        const v = await s.vms.get(req.principal, req.params.sub, req.params.rg, req.params.vm);
        reply.header('ETag', v.etag);
        return render(v);
      },
    );
    app.get(
      `${VMS}/:vm/instanceView`,
      {
        config: READ,
        schema: {
          tags: ['virtualMachines'],
          summary: "A VM's instance view (provisioning and power state)",
          params: VmParams,
          response: { 200: InstanceView },
        },
      },
      async (req) => instanceView(await s.vms.get(req.principal, req.params.sub, req.params.rg, req.params.vm)),
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${VMS}/:vm`,
        config: CREATE,
        schema: {
          tags: ['virtualMachines'],
          summary: method === 'PUT' ? 'Create a VM from a gallery image (long-running) or update its tags' : "Update a VM's tags",
          params: VmParams,
          body: VirtualMachineInput,
          response: { 200: VirtualMachine, 201: VirtualMachine },
        },
        handler: async (req, reply) => {
          const { sub, rg, vm } = req.params;
          const p = req.body.properties ?? {};
          const os = p.osProfile;
          if (method === 'PATCH' && !(await s.vms.get(req.principal, sub, rg, vm).catch(() => undefined))) {
            throw new LabforgeError(
              404,
              'ResourceNotFound',
              `The Resource 'Microsoft.Compute/virtualMachines/${vm}' under resource group '${rg}' was not found.`,
            );
          }
          const {
            vm: v,
            created,
            operation,
          } = await s.vms.createOrUpdate(
            req.principal,
            sub,
            rg,
            vm,
            {
              location: req.body.location,
              tags: req.body.tags,
              size: p.hardwareProfile?.vmSize,
              imageReference: p.storageProfile?.imageReference?.id,
              computerName: os?.computerName,
              adminUsername: os?.adminUsername,
              adminPassword: os?.adminPassword,
              sshPublicKeys: os?.linuxConfiguration?.ssh?.publicKeys?.map((k) => k.keyData),
              customData: decodeCustomData(os?.customData),
              owner: p.owner,
            },
            preconditions(req),
          );
          if (operation) lroHeaders(reply, req, publicUrl, operation);
          reply.header('ETag', v.etag).status(created ? 201 : 200);
          return render(v);
        },
      });
    }
    app.delete(
      `${VMS}/:vm`,
      {
        config: READ,
        schema: { tags: ['virtualMachines'], summary: 'Delete a VM, its disk and its processes (lab staff)', params: VmParams, response: DELETED },
      },
      async (req, reply) => {
        const deleted = await s.vms.delete(req.principal, req.params.sub, req.params.rg, req.params.vm, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );

    for (const [action, verb, summary] of [
      ['start', 'start', 'Start a VM (long-running)'],
      ['stop', 'powerOff', 'Shut a VM down: ACPI power button, then forced after the timeout (long-running)'],
      ['stop', 'deallocate', 'Same as powerOff: a stopped VM holds no CPU or memory here (long-running)'],
      ['restart', 'restart', 'Restart a VM (long-running)'],
      ['reimage', 'reimage', "Give a VM a fresh disk from its image version, dropping the guest's changes; it ends stopped (long-running)"],
      ['redeploy', 'redeploy', 'Stop the VM at once and start it in a new QEMU process on the same disk (long-running)'],
    ] as const) {
      app.post(
        `${VMS}/:vm/${verb}`,
        { config: READ, schema: { tags: ['virtualMachines'], summary, params: VmParams, response: ACCEPTED } },
        async (req, reply) => {
          const op = await s.vms.power(req.principal, req.params.sub, req.params.rg, req.params.vm, action);
          lroHeaders(reply, req, publicUrl, op);
          return reply.status(202).send();
        },
      );
    }
    app.post(
      `${VMS}/:vm/generalize`,
      {
        config: CREATE,
        schema: {
          tags: ['virtualMachines'],
          summary: 'Mark a stopped, deprovisioned VM as generalized: it can then be captured as a Generalized version, never started again',
          params: VmParams,
          response: { 200: NoBody('Generalized.') },
        },
      },
      async (req, reply) => {
        await s.vms.generalize(req.principal, req.params.sub, req.params.rg, req.params.vm);
        return reply.status(200).send();
      },
    );
    app.post(
      `${VMS}/:vm/console`,
      {
        config: READ,
        schema: {
          tags: ['virtualMachines'],
          summary: 'labforge: a one-minute ticket and the WebSocket URLs of the VM screen (VNC, for noVNC) and its serial log (read-only)',
          params: VmParams,
          response: { 200: ConsoleUrls },
        },
      },
      async (req) =>
        consoleUrls(req, publicUrl, await s.consoleTickets.issue(req.principal, await s.vms.get(req.principal, req.params.sub, req.params.rg, req.params.vm))),
    );
  };
}
