// Microsoft.LabServices/labPlans: lab plans (lab accounts), the images they
// offer creators, and saving a lab VM to the plan's gallery.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { LabPlan, LabPlanImage, LabPlanImageInput, LabPlanInput, Page, SavedImage, SaveImageInput } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { DELETED, lroHeaders, page, pageQuery, preconditions } from '../arm/arm.js';
import { ADMIN, GroupParams, PlanParams, RG, STAFF_ONLY, SubParams } from './common.js';
import { renderPlan, renderPlanImage } from './render.js';

const PlanImageParams = Type.Object({ sub: Type.String(), rg: Type.String(), plan: Type.String(), image: Type.String() });

export function labPlanRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const publicUrl = s.config.publicUrl;
    const pageSize = s.config.api.defaultPageSize;

    app.get(
      '/subscriptions/:sub/providers/Microsoft.LabServices/labPlans',
      { config: STAFF_ONLY, schema: { tags: ['labPlans'], summary: 'List lab plans in a subscription', params: SubParams, response: { 200: Page(LabPlan) } } },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        return page(req, publicUrl, await s.labPlans.list(req.params.sub, undefined, pq.after, pq.limit + 1), pq, (p) => p.key, renderPlan);
      },
    );
    app.get(
      `${RG}/labPlans`,
      {
        config: STAFF_ONLY,
        schema: { tags: ['labPlans'], summary: 'List lab plans in a resource group', params: GroupParams, response: { 200: Page(LabPlan) } },
      },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        return page(req, publicUrl, await s.labPlans.list(req.params.sub, req.params.rg, pq.after, pq.limit + 1), pq, (p) => p.key, renderPlan);
      },
    );
    app.get(
      `${RG}/labPlans/:plan`,
      { config: STAFF_ONLY, schema: { tags: ['labPlans'], summary: 'Get a lab plan', params: PlanParams, response: { 200: LabPlan } } },
      async (req) => renderPlan(await s.labPlans.get(req.params.sub, req.params.rg, req.params.plan)),
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${RG}/labPlans/:plan`,
        config: ADMIN,
        schema: {
          tags: ['labPlans'],
          summary:
            method === 'PUT' ? 'Create or replace a lab plan (attach a gallery with sharedGalleryId)' : 'Update a lab plan (attach or detach its gallery)',
          params: PlanParams,
          body: LabPlanInput,
          response: { 200: LabPlan, 201: LabPlan },
        },
        handler: async (req, reply) => {
          const { plan, created } = await s.labPlans.createOrUpdate(
            req.principal,
            req.params.sub,
            req.params.rg,
            req.params.plan,
            req.body,
            method === 'PUT' ? 'put' : 'patch',
            preconditions(req),
          );
          return reply.status(created ? 201 : 200).send(renderPlan(plan));
        },
      });
    }
    app.delete(
      `${RG}/labPlans/:plan`,
      { config: ADMIN, schema: { tags: ['labPlans'], summary: 'Delete a lab plan that has no labs', params: PlanParams, response: DELETED } },
      async (req, reply) => reply.status((await s.labPlans.delete(req.params.sub, req.params.rg, req.params.plan, preconditions(req))) ? 200 : 204).send(),
    );

    // ---- the images a plan offers ----
    app.get(
      `${RG}/labPlans/:plan/images`,
      {
        config: STAFF_ONLY,
        schema: {
          tags: ['labPlans'],
          summary: 'Images creators may use; includeHidden=true (admins) lists the others with the reasons they are hidden',
          params: PlanParams,
          querystring: Type.Object({ 'api-version': Type.Optional(Type.String()), includeHidden: Type.Optional(Type.String()) }),
          response: { 200: Page(LabPlanImage) },
        },
      },
      async (req) => {
        const includeHidden = /^(true|1|yes)$/i.test(req.query.includeHidden ?? '');
        const { planId, images } = await s.labPlans.visibleImages(req.principal, req.params.sub, req.params.rg, req.params.plan, includeHidden);
        return { value: images.map((i) => renderPlanImage(planId, i, includeHidden)) };
      },
    );
    app.get(
      `${RG}/labPlans/:plan/images/:image`,
      { config: STAFF_ONLY, schema: { tags: ['labPlans'], summary: 'One image of a lab plan', params: PlanImageParams, response: { 200: LabPlanImage } } },
      async (req) => {
        const { planId, image } = await s.labPlans.imageOf(req.params.sub, req.params.rg, req.params.plan, req.params.image);
        return renderPlanImage(planId, image, req.principal.role === 'admin');
      },
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${RG}/labPlans/:plan/images/:image`,
        config: ADMIN,
        schema: {
          tags: ['labPlans'],
          summary: 'Enable or disable an image for creators',
          params: PlanImageParams,
          body: LabPlanImageInput,
          response: { 200: LabPlanImage },
        },
        handler: async (req) => {
          const { sub, rg, plan, image } = req.params;
          const r = await s.labPlans.setImageEnabled(req.principal, sub, rg, plan, image, req.body.properties.enabledState);
          return renderPlanImage(r.planId, r.image, true);
        },
      });
    }

    app.post(
      `${RG}/labPlans/:plan/saveImage`,
      {
        config: STAFF_ONLY,
        schema: {
          tags: ['labPlans'],
          summary: "Save a lab VM to the plan's gallery: a new image (name) or, with updateExisting, a new version of the lab's image (long-running)",
          params: PlanParams,
          body: SaveImageInput,
          response: { 202: SavedImage },
        },
      },
      async (req, reply) => {
        const r = await s.labExport.saveImage(req.principal, req.params.sub, req.params.rg, req.params.plan, req.body);
        lroHeaders(reply, req, publicUrl, r.operation);
        return reply.status(202).send({ imageId: r.imageId, version: r.version });
      },
    );
  };
}
