// Microsoft.LabServices/labs/virtualMachines: a lab's template and student
// VMs, their power actions, password reset and console tickets.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ConsoleUrls, type ExportStatus, LabVm, NoBody, Page, ResetPasswordInput } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import type { LabVm as LabVmRecord } from '../../services/lab-vm.service.js';
import { ACCEPTED, lroHeaders } from '../arm/arm.js';
import { consoleUrls } from '../compute/render.js';
import { LabParams, READ, RG } from './common.js';
import { renderLabVm } from './render.js';

const LabVmParams = Type.Object({ sub: Type.String(), rg: Type.String(), lab: Type.String(), vm: Type.String() });

export function labVmRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const publicUrl = s.config.publicUrl;

    /** The template's export to the gallery, while its operation is known. */
    const exportStatusOf = async (vm: LabVmRecord): Promise<ExportStatus | undefined> => {
      if (vm.vmType !== 'Template') return undefined;
      const lab = await s.labs.find(vm.labKey);
      const op = lab?.exportOperationId ? await s.operations.get(lab.exportOperationId) : undefined;
      if (!op) return undefined;
      return {
        operationId: op.id,
        status: op.state,
        percentComplete: op.percentComplete,
        message: op.statusMessage,
        imageVersionId: op.targetId,
        error: op.error ?? undefined,
      };
    };
    const render = async (v: LabVmRecord) => renderLabVm(v, await exportStatusOf(v), s.vms.connectHost);

    app.get(
      `${RG}/labs/:lab/virtualMachines`,
      { config: READ, schema: { tags: ['labs'], summary: "A lab's VMs (students: their own)", params: LabParams, response: { 200: Page(LabVm) } } },
      async (req) => {
        const vms = await s.labVms.list(req.principal, req.params.sub, req.params.rg, req.params.lab);
        const value = [];
        for (const v of vms) value.push(await render(v));
        return { value };
      },
    );
    app.get(
      `${RG}/labs/:lab/virtualMachines/:vm`,
      { config: READ, schema: { tags: ['labs'], summary: 'One lab VM', params: LabVmParams, response: { 200: LabVm } } },
      async (req) => render(await s.labVms.get(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.vm)),
    );
    for (const a of ['start', 'stop', 'reimage', 'redeploy'] as const) {
      app.post(
        `${RG}/labs/:lab/virtualMachines/:vm/${a}`,
        { config: READ, schema: { tags: ['labs'], summary: `${a} a lab VM (long-running)`, params: LabVmParams, response: ACCEPTED } },
        async (req, reply) => {
          const op = await s.labVms.action(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.vm, a);
          lroHeaders(reply, req, publicUrl, op);
          return reply.status(202).send();
        },
      );
    }
    app.post(
      `${RG}/labs/:lab/virtualMachines/:vm/resetPassword`,
      {
        config: READ,
        schema: {
          tags: ['labs'],
          summary: 'Set a new password for the VM admin user; it applies at the next start (Generalized images)',
          params: LabVmParams,
          body: ResetPasswordInput,
          response: { 200: NoBody('The password applies at the next start.') },
        },
      },
      async (req, reply) => {
        await s.labVms.resetPassword(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.vm, req.body);
        return reply.status(200).send();
      },
    );
    app.post(
      `${RG}/labs/:lab/virtualMachines/:vm/console`,
      {
        config: READ,
        schema: {
          tags: ['labs'],
          summary: 'labforge: one-minute console WebSocket URLs of a lab VM (its student and lab staff only)',
          params: LabVmParams,
          response: { 200: ConsoleUrls },
        },
      },
      async (req) => {
        const v = await s.labVms.get(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.vm);
        return consoleUrls(req, publicUrl, await s.consoleTickets.issue(req.principal, v));
      },
    );
  };
}
