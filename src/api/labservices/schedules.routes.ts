// Microsoft.LabServices/labs/schedules: when the scheduler starts and stops a lab's student VMs.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { Page, Schedule, ScheduleInput } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { DELETED } from '../arm/arm.js';
import { LabParams, RG, STAFF_ONLY } from './common.js';
import { renderSchedule } from './render.js';

const ScheduleParams = Type.Object({ sub: Type.String(), rg: Type.String(), lab: Type.String(), schedule: Type.String() });

export function scheduleRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      `${RG}/labs/:lab/schedules`,
      { config: STAFF_ONLY, schema: { tags: ['labs'], summary: "A lab's schedules", params: LabParams, response: { 200: Page(Schedule) } } },
      async (req) => ({
        value: (await s.schedules.list(req.principal, req.params.sub, req.params.rg, req.params.lab)).map(renderSchedule),
      }),
    );
    app.get(
      `${RG}/labs/:lab/schedules/:schedule`,
      { config: STAFF_ONLY, schema: { tags: ['labs'], summary: 'One schedule', params: ScheduleParams, response: { 200: Schedule } } },
      async (req) => renderSchedule(await s.schedules.get(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.schedule)),
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${RG}/labs/:lab/schedules/:schedule`,
        config: STAFF_ONLY,
        schema: {
          tags: ['labs'],
          summary: "Start and stop the lab's student VMs at set times, once or daily/weekly, in a time zone",
          params: ScheduleParams,
          body: ScheduleInput,
          response: { 200: Schedule, 201: Schedule },
        },
        handler: async (req, reply) => {
          const { schedule, created } = await s.schedules.put(
            req.principal,
            req.params.sub,
            req.params.rg,
            req.params.lab,
            req.params.schedule,
            req.body.properties,
            method === 'PUT' ? 'put' : 'patch',
          );
          return reply.status(created ? 201 : 200).send(renderSchedule(schedule));
        },
      });
    }
    app.delete(
      `${RG}/labs/:lab/schedules/:schedule`,
      { config: STAFF_ONLY, schema: { tags: ['labs'], summary: 'Delete a schedule', params: ScheduleParams, response: DELETED } },
      async (req, reply) =>
        reply.status((await s.schedules.delete(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.schedule)) ? 200 : 204).send(),
    );
  };
}
