// Microsoft.LabServices/labs/users: a lab's students and their invitations.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { InvitedLabUser, InviteInput, LabUser, LabUserInput, Page } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { DELETED } from '../arm/arm.js';
import { LabParams, READ, RG, STAFF_ONLY } from './common.js';
import { renderLabUser } from './render.js';

const LabUserParams = Type.Object({ sub: Type.String(), rg: Type.String(), lab: Type.String(), user: Type.String() });

export function labUserRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      `${RG}/labs/:lab/users`,
      { config: READ, schema: { tags: ['labs'], summary: "A lab's users (students: themselves)", params: LabParams, response: { 200: Page(LabUser) } } },
      async (req) => ({
        value: (await s.labUsers.list(req.principal, req.params.sub, req.params.rg, req.params.lab)).map(renderLabUser),
      }),
    );
    app.get(
      `${RG}/labs/:lab/users/:user`,
      { config: READ, schema: { tags: ['labs'], summary: 'One lab user', params: LabUserParams, response: { 200: LabUser } } },
      async (req) => renderLabUser(await s.labUsers.get(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.user)),
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${RG}/labs/:lab/users/:user`,
        config: STAFF_ONLY,
        schema: {
          tags: ['labs'],
          summary: 'Add a student by email (a published lab gives them a seat) or change their extra quota',
          params: LabUserParams,
          body: LabUserInput,
          response: { 200: LabUser, 201: LabUser },
        },
        handler: async (req, reply) => {
          const { user, created } = await s.labUsers.put(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.user, req.body.properties);
          return reply.status(created ? 201 : 200).send(renderLabUser(user));
        },
      });
    }
    app.delete(
      `${RG}/labs/:lab/users/:user`,
      {
        config: STAFF_ONLY,
        schema: { tags: ['labs'], summary: 'Remove a student; their seat goes back to the lab', params: LabUserParams, response: DELETED },
      },
      async (req, reply) =>
        reply.status((await s.labUsers.delete(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.user)) ? 200 : 204).send(),
    );
    app.post(
      `${RG}/labs/:lab/users/:user/invite`,
      {
        config: STAFF_ONLY,
        schema: {
          tags: ['labs'],
          summary: 'Mark a student invited; the answer carries the registration code to send them',
          params: LabUserParams,
          body: Type.Optional(InviteInput),
          response: { 200: InvitedLabUser },
        },
      },
      async (req) => {
        const r = await s.labUsers.invite(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.user);
        return { ...renderLabUser(r.user), registrationCode: r.registrationCode };
      },
    );
  };
}
