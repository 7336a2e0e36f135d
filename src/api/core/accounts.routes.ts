// Sign-in of people (Labforge.Core): accounts with passwords, sessions,
// invitations and registration with a lab's code.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import Type from 'typebox';
import { Account, AccountInput, AccountWithInvitation, Credentials, NoBody, Page, RedeemInput, Registered, ROLES, Session } from '../../contract/index.js';
import { LabforgeError } from '../../errors.js';
import type { Services } from '../../services/index.js';
import { DELETED } from '../arm/arm.js';
import { renderAccount, renderSession } from './render.js';

const PUBLIC = { apiFamily: 'labforge', public: true } as const;
const ADMIN = { apiFamily: 'labforge', roles: ['admin'] } as const;
const ALL = { apiFamily: 'labforge', roles: ROLES } as const;
const EmailParams = Type.Object({ email: Type.String() });

function withRetryAfter(reply: FastifyReply, err: unknown): never {
  const wait = (err as { retryAfter?: number }).retryAfter;
  if (wait) reply.header('Retry-After', String(wait));
  throw err;
}

export function accountRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/providers/Labforge.Core/signIn',
      {
        config: PUBLIC,
        schema: {
          tags: ['accounts'],
          summary: 'Email and password to a session token (12 hours); failed attempts are rate-limited',
          body: Credentials,
          response: { 200: Session },
        },
      },
      async (req, reply) => renderSession(await s.accounts.signIn(req.body.email, req.body.password, req.ip).catch((err) => withRetryAfter(reply, err))),
    );
    app.post(
      '/providers/Labforge.Core/register',
      {
        config: PUBLIC,
        schema: {
          tags: ['accounts'],
          summary: "Choose a password with an admin's invitation, or (students) with a lab's registration code; answers with a session",
          body: Credentials,
          response: { 200: Session },
        },
      },
      async (req) => renderSession(await s.accounts.register(req.body, req.ip)),
    );
    app.post(
      '/providers/Labforge.Core/signOut',
      { config: ALL, schema: { tags: ['accounts'], summary: 'End the session this request was made with', response: { 204: NoBody('Signed out.') } } },
      async (req, reply) => {
        await s.accounts.signOut(req.principal);
        return reply.status(204).send();
      },
    );
    app.post(
      '/providers/Labforge.Core/redeemRegistrationCode',
      {
        config: ALL,
        schema: { tags: ['accounts'], summary: 'A signed-in student joins a lab with its registration code', body: RedeemInput, response: { 200: Registered } },
      },
      async (req) => {
        if (!(await s.labUsers.registerStudent(req.principal.subject.toLowerCase(), req.body.registrationCode))) {
          throw new LabforgeError(
            404,
            'RegistrationFailed',
            'The registration code is wrong, or this lab is not open and your email is not on its list. Check the code with your teacher.',
          );
        }
        return { registered: true };
      },
    );

    app.get(
      '/providers/Labforge.Core/accounts',
      { config: ADMIN, schema: { tags: ['accounts'], summary: "People's accounts", response: { 200: Page(Account) } } },
      async () => ({ value: (await s.accounts.list()).map(renderAccount) }),
    );
    app.get(
      '/providers/Labforge.Core/accounts/:email',
      { config: ADMIN, schema: { tags: ['accounts'], summary: 'One account', params: EmailParams, response: { 200: Account } } },
      async (req) => renderAccount(await s.accounts.get(req.params.email)),
    );
    app.put(
      '/providers/Labforge.Core/accounts/:email',
      {
        config: ADMIN,
        schema: {
          tags: ['accounts'],
          summary: 'Create or change an account; without a password the answer carries a one-time invitation (14 days) to choose one',
          params: EmailParams,
          body: AccountInput,
          response: { 200: AccountWithInvitation, 201: AccountWithInvitation },
        },
      },
      async (req, reply) => {
        const r = await s.accounts.put(req.principal, req.params.email, req.body.properties);
        return reply.status(r.created ? 201 : 200).send({ ...renderAccount(r.account), invitation: r.invitation || undefined });
      },
    );
    app.delete(
      '/providers/Labforge.Core/accounts/:email',
      { config: ADMIN, schema: { tags: ['accounts'], summary: 'Delete an account and end its sessions', params: EmailParams, response: DELETED } },
      async (req, reply) => reply.status((await s.accounts.delete(req.params.email)) ? 200 : 204).send(),
    );
  };
}
