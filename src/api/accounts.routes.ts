// Sign-in of people (Labforge.Core): accounts with passwords, sessions,
// invitations and registration with a lab's code.
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import Type from 'typebox';
import type { Account, Session } from '../services/account.service.js';
import type { Services } from '../services/index.js';
import type { App } from './app.js';

const PUBLIC = { apiFamily: 'labforge', public: true } as const;
const ADMIN = { apiFamily: 'labforge', roles: ['admin'] } as const;
const ALL = ['admin', 'creator', 'user'] as const;
const Credentials = Type.Object({
  email: Type.Optional(Type.String({ maxLength: 254 })),
  password: Type.Optional(Type.String({ maxLength: 200 })),
  invitation: Type.Optional(Type.String({ maxLength: 200 })),
  registrationCode: Type.Optional(Type.String({ maxLength: 100 })),
  displayName: Type.Optional(Type.String({ maxLength: 200 })),
});

export function renderAccount(a: Account) {
  return {
    id: `/providers/Labforge.Core/accounts/${a.email}`,
    name: a.email,
    type: 'Labforge.Core/accounts',
    properties: {
      email: a.email,
      displayName: a.displayName ?? undefined,
      role: a.role,
      state: a.hasPassword ? 'Active' : a.invitationPending ? 'Invited' : 'NoPassword',
      createdAt: a.createdAt,
      createdBy: a.createdBy,
      lastSignInAt: a.lastSignInAt ?? undefined,
    },
  };
}

const renderSession = (s: Session) => ({ token: s.token, expiresAt: s.expiresAt, subject: s.subject, role: s.role });

function withRetryAfter(reply: FastifyReply, err: unknown): never {
  const wait = (err as { retryAfter?: number }).retryAfter;
  if (wait) reply.header('Retry-After', String(wait));
  throw err;
}

export function accountRoutes(s: Services): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify as unknown as App;

    app.post(
      '/providers/Labforge.Core/signIn',
      {
        config: PUBLIC,
        schema: { tags: ['accounts'], summary: 'Email and password to a session token (12 hours); failed attempts are rate-limited', body: Credentials },
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
        },
      },
      async (req) => renderSession(await s.accounts.register(req.body, req.ip)),
    );
    app.post(
      '/providers/Labforge.Core/signOut',
      { config: { apiFamily: 'labforge', roles: ALL }, schema: { tags: ['accounts'], summary: 'End the session this request was made with' } },
      async (req, reply) => {
        await s.accounts.signOut(req.principal);
        return reply.status(204).send();
      },
    );
    app.post(
      '/providers/Labforge.Core/redeemRegistrationCode',
      {
        config: { apiFamily: 'labforge', roles: ALL },
        schema: {
          tags: ['accounts'],
          summary: 'A signed-in student joins a lab with its registration code',
          body: Type.Object({ registrationCode: Type.String({ maxLength: 100 }) }),
        },
      },
      async (req, reply) => {
        if (!(await s.labUsers.registerStudent(req.principal.subject.toLowerCase(), req.body.registrationCode))) {
          return reply.status(404).send({
            error: {
              code: 'RegistrationFailed',
              message: 'The registration code is wrong, or this lab is not open and your email is not on its list. Check the code with your teacher.',
            },
          });
        }
        return reply.status(200).send({ registered: true });
      },
    );

    app.get('/providers/Labforge.Core/accounts', { config: ADMIN, schema: { tags: ['accounts'], summary: "People's accounts" } }, async () => ({
      value: (await s.accounts.list()).map(renderAccount),
    }));
    app.get(
      '/providers/Labforge.Core/accounts/:email',
      { config: ADMIN, schema: { tags: ['accounts'], summary: 'One account', params: Type.Object({ email: Type.String() }) } },
      async (req) => renderAccount(await s.accounts.get(req.params.email)),
    );
    app.put(
      '/providers/Labforge.Core/accounts/:email',
      {
        config: ADMIN,
        schema: {
          tags: ['accounts'],
          summary: 'Create or change an account; without a password the answer carries a one-time invitation (14 days) to choose one',
          params: Type.Object({ email: Type.String() }),
          body: Type.Object({
            properties: Type.Object({
              role: Type.Optional(Type.String()),
              displayName: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
              password: Type.Optional(Type.String({ maxLength: 200 })),
            }),
          }),
        },
      },
      async (req, reply) => {
        const r = await s.accounts.put(req.principal, req.params.email, req.body.properties);
        return reply.status(r.created ? 201 : 200).send({ ...renderAccount(r.account), ...(r.invitation ? { invitation: r.invitation } : {}) });
      },
    );
    app.delete(
      '/providers/Labforge.Core/accounts/:email',
      { config: ADMIN, schema: { tags: ['accounts'], summary: 'Delete an account and end its sessions', params: Type.Object({ email: Type.String() }) } },
      async (req, reply) => reply.status((await s.accounts.delete(req.params.email)) ? 200 : 204).send(),
    );
  };
}
