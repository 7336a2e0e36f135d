// Microsoft.Compute/virtualMachines (the subset labforge runs: VMs from
// gallery images, power actions, generalize) and the console WebSockets.
import { createConnection } from 'node:net';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { invalidParameter, LabforgeError } from '../../errors.js';
import { vmArmId } from '../../lib/arm-id.js';
import type { Services } from '../../services/index.js';
import type { PowerAction, VirtualMachine } from '../../services/vm.service.js';
import type { App } from '../app.js';
import { baseUrl, lroHeaders, page, pageQuery, preconditions, systemData } from '../arm/arm.js';
import { followFile } from './serial-follow.js';

const ALL = ['admin', 'creator', 'user'] as const;
const READ = { apiFamily: 'virtualMachines', roles: ALL } as const;
const CREATE = { apiFamily: 'virtualMachines', roles: ['admin', 'creator'] } as const;
const PROVIDER = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute/virtualMachines';
const VmParams = Type.Object({ sub: Type.String(), rg: Type.String(), vm: Type.String() });

const VmBody = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(Type.Record(Type.String(), Type.String())),
  properties: Type.Optional(
    Type.Object({
      owner: Type.Optional(Type.String()),
      hardwareProfile: Type.Optional(Type.Object({ vmSize: Type.Optional(Type.String()) })),
      storageProfile: Type.Optional(Type.Object({ imageReference: Type.Optional(Type.Object({ id: Type.Optional(Type.String()) })) })),
      osProfile: Type.Optional(
        Type.Object({
          computerName: Type.Optional(Type.String()),
          adminUsername: Type.Optional(Type.String()),
          adminPassword: Type.Optional(Type.String()),
          customData: Type.Optional(Type.String()),
          linuxConfiguration: Type.Optional(
            Type.Object({
              disablePasswordAuthentication: Type.Optional(Type.Boolean()),
              ssh: Type.Optional(
                Type.Object({ publicKeys: Type.Optional(Type.Array(Type.Object({ path: Type.Optional(Type.String()), keyData: Type.String() }))) }),
              ),
            }),
          ),
        }),
      ),
    }),
  ),
});

const POWER_CODES: Record<string, [string, string]> = {
  Running: ['PowerState/running', 'VM running'],
  Stopped: ['PowerState/stopped', 'VM stopped'],
  Starting: ['PowerState/starting', 'VM starting'],
  Stopping: ['PowerState/stopping', 'VM stopping'],
  Failed: ['PowerState/unknown', 'VM failed'],
};

/** Short names of the reasons a VM's status can carry (the message says the rest). */
const REASONS: Record<string, string> = {
  QemuStartFailed: 'QEMU could not start the VM',
  DiskMissing: 'Disk missing',
  GuestCrashed: 'Guest crashed',
  AcceleratorFailed: 'Accelerator failed',
  EmulationFailed: 'Emulation failed',
  QemuExited: 'QEMU ended unexpectedly',
  VmMissingOnHost: 'VM missing on its host',
  HostUnavailable: 'Host unavailable',
  SoftwareEmulationFallback: 'Running under software emulation',
};

/** Azure's instance view: provisioning and power statuses, plus an Error status saying why a VM failed (or a Warning about how it runs). */
export function instanceView(v: VirtualMachine) {
  const [code, displayStatus] = POWER_CODES[v.state] ?? ['PowerState/unknown', v.state];
  const provisioningFailed = v.provisioningState === 'Failed';
  const statuses: Array<{ code: string; level: 'Info' | 'Warning' | 'Error'; displayStatus: string; message?: string }> = [
    {
      code: `ProvisioningState/${v.provisioningState.toLowerCase()}${provisioningFailed && v.statusCode ? `/${v.statusCode}` : ''}`,
      level: provisioningFailed ? 'Error' : 'Info',
      displayStatus: `Provisioning ${v.provisioningState.toLowerCase()}`,
      ...(provisioningFailed && v.statusMessage ? { message: v.statusMessage } : {}),
    },
    { code, level: 'Info', displayStatus },
  ];
  if (!provisioningFailed && v.statusCode && v.statusMessage) {
    const failed = v.state === 'Failed';
    statuses.push({
      code: `${failed ? 'VMFailure' : 'VMNotice'}/${v.statusCode}`,
      level: failed ? 'Error' : 'Warning',
      displayStatus: REASONS[v.statusCode] ?? (failed ? 'VM failed' : v.statusCode),
      message: v.statusMessage,
    });
  } else if (!provisioningFailed && v.statusMessage && v.state !== 'Running') {
    // A power operation that did not go through (the VM kept its state): its reason, for people.
    statuses.push({ code: 'VMNotice/OperationFailed', level: 'Warning', displayStatus: 'Last operation failed', message: v.statusMessage });
  }
  return { computerName: v.computerName, osName: v.osType, hyperVGeneration: v.hyperVGeneration, statuses };
}

export function renderVm(v: VirtualMachine, connectHost = '127.0.0.1') {
  const exact = v.exactVersion.split('/').pop();
  const authority = v.hostPort ? `${connectHost}:${v.hostPort}` : undefined;
  return {
    id: vmArmId(v),
    name: v.name,
    type: 'Microsoft.Compute/virtualMachines',
    location: v.location,
    tags: v.tags,
    etag: v.etag,
    properties: {
      vmId: v.key,
      hardwareProfile: { vmSize: v.size, vmSizeProperties: { vCPUsAvailable: v.vcpus }, memoryMiB: v.memoryMiB },
      storageProfile: {
        imageReference: { id: v.imageReference, exactVersion: exact },
        osDisk: { osType: v.osType, createOption: 'FromImage', name: `${v.name}_OsDisk` },
      },
      ...(v.osState === 'Generalized'
        ? {
            osProfile: {
              computerName: v.computerName,
              adminUsername: v.adminUsername ?? undefined,
              ...(v.osType === 'Linux' && v.sshPublicKeys.length
                ? {
                    linuxConfiguration: {
                      ssh: { publicKeys: v.sshPublicKeys.map((k) => ({ path: `/home/${v.adminUsername}/.ssh/authorized_keys`, keyData: k })) },
                    },
                  }
                : {}),
            },
          }
        : {}),
      provisioningState: v.provisioningState,
      instanceView: instanceView(v),
      // labforge: the power state with Azure Lab Services' names, and how to connect.
      state: v.state,
      ...(v.statusCode ? { statusCode: v.statusCode } : {}),
      ...(v.statusMessage ? { statusMessage: v.statusMessage } : {}),
      generalized: v.generalized,
      owner: v.owner,
      osState: v.osState,
      connectionProfile: authority ? (v.osType === 'Windows' ? { rdpAuthority: authority } : { sshAuthority: authority }) : {},
    },
    systemData: systemData(v),
  };
}

/** The WebSocket URLs a console ticket opens. */
export function consoleUrls(req: FastifyRequest, publicUrl: string | undefined, t: { ticket: string; expiresAt: string }) {
  const ws = baseUrl(req, publicUrl).replace(/^http/, 'ws');
  return { expiresAt: t.expiresAt, vncUrl: `${ws}/consoles/${t.ticket}/vnc`, serialUrl: `${ws}/consoles/${t.ticket}/serial` };
}

export function decodeCustomData(b64: string | undefined): string | undefined {
  if (b64 === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw invalidParameter(
      'customData must be base64-encoded (as in Azure). Encode the #cloud-config document with base64 -w0.',
      'properties.osProfile.customData',
    );
  }
  return Buffer.from(b64, 'base64').toString('utf8');
}

export function vmRoutes(s: Services): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify as unknown as App;
    const publicUrl = s.config.publicUrl;
    const pageSize = s.config.api.defaultPageSize;
    const vmKeyOf = (v: VirtualMachine) => v.key;

    app.get(
      '/subscriptions/:sub/providers/Microsoft.Compute/virtualMachines',
      {
        config: READ,
        schema: { tags: ['virtualMachines'], summary: 'List VMs in a subscription (students see their own)', params: Type.Object({ sub: Type.String() }) },
      },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.vms.list(req.principal, req.params.sub, undefined, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, vmKeyOf, (v) => renderVm(v, s.vms.connectHost));
      },
    );
    app.get(
      PROVIDER,
      {
        config: READ,
        schema: { tags: ['virtualMachines'], summary: 'List VMs in a resource group', params: Type.Object({ sub: Type.String(), rg: Type.String() }) },
      },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        const rows = await s.vms.list(req.principal, req.params.sub, req.params.rg, pq.after, pq.limit + 1);
        return page(req, publicUrl, rows, pq, vmKeyOf, (v) => renderVm(v, s.vms.connectHost));
      },
    );
    app.get(
      `${PROVIDER}/:vm`,
      { config: READ, schema: { tags: ['virtualMachines'], summary: 'Get a VM with its power state', params: VmParams } },
      async (req, reply) => {
        const v = await s.vms.get(req.principal, req.params.sub, req.params.rg, req.params.vm);
        reply.header('ETag', v.etag);
        return renderVm(v, s.vms.connectHost);
      },
    );
    app.get(
      `${PROVIDER}/:vm/instanceView`,
      { config: READ, schema: { tags: ['virtualMachines'], summary: "A VM's instance view (provisioning and power state)", params: VmParams } },
      async (req) => instanceView(await s.vms.get(req.principal, req.params.sub, req.params.rg, req.params.vm)),
    );
    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: `${PROVIDER}/:vm`,
        config: CREATE,
        schema: {
          tags: ['virtualMachines'],
          summary: method === 'PUT' ? 'Create a VM from a gallery image (long-running) or update its tags' : "Update a VM's tags",
          params: VmParams,
          body: VmBody,
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
          return renderVm(v, s.vms.connectHost);
        },
      });
    }
    app.delete(
      `${PROVIDER}/:vm`,
      { config: READ, schema: { tags: ['virtualMachines'], summary: 'Delete a VM, its disk and its processes (lab staff)', params: VmParams } },
      async (req, reply) => {
        const deleted = await s.vms.delete(req.principal, req.params.sub, req.params.rg, req.params.vm, preconditions(req));
        return reply.status(deleted ? 200 : 204).send();
      },
    );

    const power = (action: PowerAction) => async (req: FastifyRequest<{ Params: { sub: string; rg: string; vm: string } }>, reply: FastifyReply) => {
      const op = await s.vms.power(req.principal, req.params.sub, req.params.rg, req.params.vm, action);
      lroHeaders(reply, req, publicUrl, op);
      return reply.status(202).send();
    };
    for (const [action, verb, summary] of [
      ['start', 'start', 'Start a VM (long-running)'],
      ['stop', 'powerOff', 'Shut a VM down: ACPI power button, then forced after the timeout (long-running)'],
      ['stop', 'deallocate', 'Same as powerOff: a stopped VM holds no CPU or memory here (long-running)'],
      ['restart', 'restart', 'Restart a VM (long-running)'],
      ['reimage', 'reimage', "Give a VM a fresh disk from its image version, dropping the guest's changes; it ends stopped (long-running)"],
      ['redeploy', 'redeploy', 'Stop the VM at once and start it in a new QEMU process on the same disk (long-running)'],
    ] as const) {
      app.post(`${PROVIDER}/:vm/${verb}`, { config: READ, schema: { tags: ['virtualMachines'], summary, params: VmParams } }, power(action));
    }
    app.post(
      `${PROVIDER}/:vm/generalize`,
      {
        config: CREATE,
        schema: {
          tags: ['virtualMachines'],
          summary: 'Mark a stopped, deprovisioned VM as generalized: it can then be captured as a Generalized version, never started again',
          params: VmParams,
        },
      },
      async (req, reply) => {
        await s.vms.generalize(req.principal, req.params.sub, req.params.rg, req.params.vm);
        return reply.status(200).send();
      },
    );
    app.post(
      `${PROVIDER}/:vm/console`,
      {
        config: READ,
        schema: {
          tags: ['virtualMachines'],
          summary: 'labforge: a one-minute ticket and the WebSocket URLs of the VM screen (VNC, for noVNC) and its serial log (read-only)',
          params: VmParams,
        },
      },
      async (req) =>
        consoleUrls(req, publicUrl, await s.consoleTickets.issue(req.principal, await s.vms.get(req.principal, req.params.sub, req.params.rg, req.params.vm))),
    );

    // ---- console WebSockets: the ticket in the URL is the credential ----
    const TicketParams = Type.Object({ ticket: Type.String() });
    app.get(
      '/consoles/:ticket/vnc',
      {
        websocket: true,
        config: { public: true },
        schema: { hide: true, params: TicketParams },
        preValidation: async (req) => {
          (req as unknown as { vmStatus: unknown }).vmStatus = await s.consoleTickets.redeem((req.params as { ticket: string }).ticket, 'vnc');
        },
      },
      (socket, req) => {
        const status = (req as unknown as { vmStatus: { id?: string; vncSocket?: string } }).vmStatus;
        const vnc = createConnection(status.vncSocket as string);
        s.autoShutdown.consoleOpened(status.id as string);
        socket.on('close', () => s.autoShutdown.consoleClosed(status.id as string));
        vnc.on('data', (d) => socket.send(d));
        vnc.on('error', () => socket.close(1011, 'The VM display is not reachable'));
        vnc.on('close', () => socket.close(1000, 'The VM display closed'));
        socket.on('message', (d: Buffer) => vnc.write(d));
        socket.on('close', () => vnc.destroy());
      },
    );
    app.get(
      '/consoles/:ticket/serial',
      {
        websocket: true,
        config: { public: true },
        schema: { hide: true, params: TicketParams },
        preValidation: async (req) => {
          (req as unknown as { vmStatus: unknown }).vmStatus = await s.consoleTickets.redeem((req.params as { ticket: string }).ticket, 'serial');
        },
      },
      (socket, req) => {
        const status = (req as unknown as { vmStatus: { id: string; serialLog: string } }).vmStatus;
        const stop = followFile(status.serialLog, {
          tailBytes: 64 * 1024,
          onData: (text) => socket.send(text),
          stillWanted: async () => (await s.driver.status(status.id))?.state === 'Running',
          onEnd: () => socket.close(1000, 'The VM stopped'),
        });
        s.autoShutdown.consoleOpened(status.id);
        // Read-only: input from the client is ignored.
        socket.on('close', () => {
          stop();
          s.autoShutdown.consoleClosed(status.id);
        });
      },
    );
  };
}
