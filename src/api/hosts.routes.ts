// Hypervisor hosts (provider Labforge.Core): what each runs VMs with, and why.
import type { FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import type { Host } from '../services/host.service.js';
import type { Services } from '../services/index.js';
import type { App } from './app.js';

const STAFF = ['admin', 'creator'] as const;
const Params = Type.Object({ host: Type.String() });

export function renderHost(h: Host) {
  return {
    id: `/providers/Labforge.Core/hosts/${h.name}`,
    name: h.name,
    type: 'Labforge.Core/hosts',
    properties: {
      state: h.state,
      ...(h.stateReason ? { stateReason: h.stateReason } : {}),
      computeDriver: h.driver,
      ...(h.acceleration ? { acceleration: h.acceleration } : {}),
      virtualMachines: h.vms,
    },
  };
}

export function hostRoutes(s: Services): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify as unknown as App;
    app.get(
      '/providers/Labforge.Core/hosts',
      { config: { apiFamily: 'labforge', roles: STAFF }, schema: { tags: ['hosts'], summary: 'Hypervisor hosts and how each accelerates VMs' } },
      async (req) => ({ value: (await s.hosts.list(req.principal)).map(renderHost) }),
    );
    app.get(
      '/providers/Labforge.Core/hosts/:host',
      {
        config: { apiFamily: 'labforge', roles: STAFF },
        schema: { tags: ['hosts'], summary: 'One host: state, acceleration (KVM or software emulation, and why), VMs', params: Params },
      },
      async (req) => renderHost(await s.hosts.get(req.principal, req.params.host)),
    );
    app.post(
      '/providers/Labforge.Core/hosts/:host/checkAcceleration',
      {
        config: { apiFamily: 'labforge', roles: ['admin'] },
        schema: { tags: ['hosts'], summary: 'Test KVM on the host again instead of using the cached verdict', params: Params },
      },
      async (req) => renderHost(await s.hosts.checkAcceleration(req.principal, req.params.host)),
    );
  };
}
