// Microsoft.LabServices/labs: labs (creating one builds and starts its
// template) and publishing them to their students.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Lab, LabInput, Page } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { ACCEPTED, DELETED, lroHeaders, page, pageQuery, preconditions } from '../arm/arm.js';
import { decodeCustomData } from '../compute/custom-data.js';
import { GroupParams, LabParams, READ, RG, STAFF_ONLY, SubParams } from './common.js';
import { renderLab } from './render.js';

/** A lab's body with its customData (a labforge extension, base64 as on Azure VMs) decoded. */
function decoded(body: LabInput): LabInput {
  const vp = body.properties?.virtualMachineProfile;
  if (vp?.customData === undefined) return body;
  const customData = decodeCustomData(vp.customData, 'properties.virtualMachineProfile.customData');
  return { ...body, properties: { ...body.properties, virtualMachineProfile: { ...vp, customData } } };
}

export function labRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const publicUrl = s.config.publicUrl;
    const pageSize = s.config.api.defaultPageSize;

    app.get(
      '/subscriptions/:sub/providers/Microsoft.LabServices/labs',
      { config: READ, schema: { tags: ['labs'], summary: 'List labs (students: the labs they are in)', params: SubParams, response: { 200: Page(Lab) } } },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.labs.list(req.principal, req.params.sub, undefined, pq.after, pq.limit + 1);
        return page(
          req,
          publicUrl,
          rows,
          pq,
          (l) => l.key,
          (l) => renderLab(l, req.principal),
        );
      },
    );
    app.get(
      `${RG}/labs`,
      { config: READ, schema: { tags: ['labs'], summary: 'List labs in a resource group', params: GroupParams, response: { 200: Page(Lab) } } },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.labs.list(req.principal, req.params.sub, req.params.rg, pq.after, pq.limit + 1);
        return page(
          req,
          publicUrl,
          rows,
          pq,
          (l) => l.key,
          (l) => renderLab(l, req.principal),
        );
      },
    );
    app.get(`${RG}/labs/:lab`, { config: READ, schema: { tags: ['labs'], summary: 'Get a lab', params: LabParams, response: { 200: Lab } } }, async (req) =>
      renderLab(await s.labs.get(req.principal, req.params.sub, req.params.rg, req.params.lab), req.principal),
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${RG}/labs/:lab`,
        config: STAFF_ONLY,
        schema: {
          tags: ['labs'],
          summary:
            method === 'PUT' ? 'Create a lab: its template VM is built and started (long-running)' : 'Update a lab; a new capacity rescales a published lab',
          params: LabParams,
          body: LabInput,
          response: { 200: Lab, 201: Lab, 202: Lab },
        },
        handler: async (req, reply) => {
          const { lab, created, operation } = await s.labs.createOrUpdate(
            req.principal,
            req.params.sub,
            req.params.rg,
            req.params.lab,
            decoded(req.body),
            method === 'PUT' ? 'put' : 'patch',
            preconditions(req),
          );
          if (operation) lroHeaders(reply, req, publicUrl, operation);
          return reply.status(created ? 201 : operation ? 202 : 200).send(renderLab(lab, req.principal));
        },
      });
    }
    app.delete(
      `${RG}/labs/:lab`,
      { config: STAFF_ONLY, schema: { tags: ['labs'], summary: 'Delete a lab with its VMs', params: LabParams, response: DELETED } },
      async (req, reply) =>
        reply.status((await s.labs.delete(req.principal, req.params.sub, req.params.rg, req.params.lab, preconditions(req))) ? 200 : 204).send(),
    );
    app.post(
      `${RG}/labs/:lab/publish`,
      {
        config: STAFF_ONLY,
        schema: {
          tags: ['labs'],
          summary: "Create the student VMs from the template's current disk; publishing again replaces them and students' changes are lost (long-running)",
          params: LabParams,
          response: ACCEPTED,
        },
      },
      async (req, reply) => {
        const op = await s.labs.publish(req.principal, req.params.sub, req.params.rg, req.params.lab);
        lroHeaders(reply, req, publicUrl, op);
        return reply.status(202).send();
      },
    );
  };
}
