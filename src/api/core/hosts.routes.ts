// Labforge.Core/hosts: the hypervisor hosts, what each runs VMs with, and why.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { Host, Page } from '../../contract/index.js';
import type { Services } from '../../services/index.js';
import { renderHost } from './render.js';

const STAFF = { apiFamily: 'labforge', roles: ['admin', 'creator'] } as const;
const Params = Type.Object({ host: Type.String() });

export function hostRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/providers/Labforge.Core/hosts',
      { config: STAFF, schema: { tags: ['hosts'], summary: 'Hypervisor hosts and how each accelerates VMs', response: { 200: Page(Host) } } },
      async (req) => ({ value: (await s.hosts.list(req.principal)).map(renderHost) }),
    );
    app.get(
      '/providers/Labforge.Core/hosts/:host',
      {
        config: STAFF,
        schema: {
          tags: ['hosts'],
          summary: 'One host: state, acceleration (KVM or software emulation, and why), VMs',
          params: Params,
          response: { 200: Host },
        },
      },
      async (req) => renderHost(await s.hosts.get(req.principal, req.params.host)),
    );
    app.post(
      '/providers/Labforge.Core/hosts/:host/checkAcceleration',
      {
        config: { apiFamily: 'labforge', roles: ['admin'] },
        schema: { tags: ['hosts'], summary: 'Test KVM on the host again instead of using the cached verdict', params: Params, response: { 200: Host } },
      },
      async (req) => renderHost(await s.hosts.checkAcceleration(req.principal, req.params.host)),
    );
  };
}
