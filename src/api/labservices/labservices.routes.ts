// Microsoft.LabServices (api-version 2022-08-01 shapes): lab plans and their
// images, labs, lab VMs and lab users. Thin handlers over the lab services.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { labArmId, labPlanArmId } from '../../lib/arm-id.js';
import type { Principal } from '../../services/common.js';
import type { Services } from '../../services/index.js';
import { type Lab, secondsToDuration } from '../../services/lab.service.js';
import { type LabPlan, type LabPlanImage, LabPlanService } from '../../services/lab-plan.service.js';
import type { LabUser } from '../../services/lab-user.service.js';
import type { LabVm } from '../../services/lab-vm.service.js';
import type { LabSchedule } from '../../services/schedule.service.js';
import type { App } from '../app.js';
import { lroHeaders, page, pageQuery, preconditions, systemData } from '../arm/arm.js';
import { consoleUrls, decodeCustomData } from '../compute/vm.routes.js';

const ALL = ['admin', 'creator', 'user'] as const;
const STAFF = ['admin', 'creator'] as const;
const family = 'labServices' as const;
const READ = { apiFamily: family, roles: ALL } as const;
const STAFF_ONLY = { apiFamily: family, roles: STAFF } as const;
const ADMIN = { apiFamily: family, roles: ['admin'] } as const;
const RG = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.LabServices';
const Body = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(Type.Record(Type.String(), Type.String())),
  properties: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
const PlanParams = Type.Object({ sub: Type.String(), rg: Type.String(), plan: Type.String() });
const LabParams = Type.Object({ sub: Type.String(), rg: Type.String(), lab: Type.String() });
const LabVmParams = Type.Object({ sub: Type.String(), rg: Type.String(), lab: Type.String(), vm: Type.String() });
const LabUserParams = Type.Object({ sub: Type.String(), rg: Type.String(), lab: Type.String(), user: Type.String() });

export function renderPlan(p: LabPlan) {
  return {
    id: labPlanArmId(p),
    name: p.name,
    type: 'Microsoft.LabServices/labPlans',
    location: p.location,
    tags: p.tags,
    systemData: systemData(p),
    properties: {
      defaultConnectionProfile: p.defaultConnectionProfile,
      defaultAutoShutdownProfile: p.defaultAutoShutdownProfile,
      defaultNetworkProfile: {},
      allowedRegions: p.allowedRegions,
      ...(p.sharedGalleryId ? { sharedGalleryId: p.sharedGalleryId } : {}),
      ...(p.supportInfo ? { supportInfo: p.supportInfo } : {}),
      ...(p.linkedLmsInstance ? { linkedLmsInstance: p.linkedLmsInstance } : {}),
      provisioningState: p.provisioningState,
    },
  };
}

export function renderPlanImage(planId: string, i: LabPlanImage, withReasons: boolean) {
  const g = i.gallery;
  return {
    id: `${planId}/images/${i.name}`,
    name: i.name,
    type: 'Microsoft.LabServices/labPlans/images',
    properties: {
      enabledState: i.enabled ? 'Enabled' : 'Disabled',
      provisioningState: 'Succeeded',
      displayName: i.name,
      description: i.image.description ?? undefined,
      author: i.image.publisher,
      osType: i.image.os_type,
      osState: i.image.os_state,
      offer: i.image.offer,
      publisher: i.image.publisher,
      sku: i.image.sku,
      version: i.latest?.name,
      sharedGalleryId: `/subscriptions/${g.subscription_id}/resourceGroups/${g.resource_group}/providers/Microsoft.Compute/galleries/${g.name}`,
      availableRegions: i.availableRegions,
      termsStatus: 'Disabled',
      // labforge: what the image is and why it may be hidden from creators.
      osDiskSizeGB: i.osDiskSizeGB ?? undefined,
      dataDiskCount: i.dataDiskCount,
      builtin: i.builtin,
      ...(withReasons ? { hiddenReasons: i.hiddenReasons } : {}),
    },
  };
}

export function renderLab(l: Lab, p: Principal) {
  const vp = l.vmProfile;
  const staff = p.role !== 'user';
  return {
    id: labArmId(l),
    name: l.name,
    type: 'Microsoft.LabServices/labs',
    location: l.location,
    tags: l.tags,
    systemData: systemData(l),
    properties: {
      autoShutdownProfile: l.autoShutdownProfile,
      connectionProfile: l.connectionProfile,
      virtualMachineProfile: {
        createOption: vp.createOption,
        imageReference: { id: vp.imageReference.id, exactVersion: vp.exactVersion.split('/').pop() },
        osType: vp.osType,
        sku: vp.sku,
        additionalCapabilities: { installGpuDrivers: vp.installGpuDrivers },
        usageQuota: vp.usageQuota,
        useSharedPassword: vp.useSharedPassword,
        ...(vp.adminUser ? { adminUser: vp.adminUser } : {}),
        ...(vp.nonAdminUser ? { nonAdminUser: vp.nonAdminUser } : {}),
      },
      securityProfile: staff ? l.securityProfile : { openAccess: l.securityProfile.openAccess },
      ...(l.labPlanId ? { labPlanId: l.labPlanId } : {}),
      title: l.title,
      ...(l.description ? { description: l.description } : {}),
      provisioningState: l.provisioningState,
      state: l.state,
    },
  };
}

export function renderLabVm(v: LabVm, exportStatus?: unknown, connectHost = '127.0.0.1') {
  const authority = v.hostPort ? `${connectHost}:${v.hostPort}` : undefined;
  return {
    id: `${labArmId({ subscriptionId: v.subscriptionId, resourceGroup: v.resourceGroup, name: v.labName })}/virtualMachines/${v.vmName}`,
    name: v.vmName,
    type: 'Microsoft.LabServices/labs/virtualMachines',
    systemData: systemData(v),
    properties: {
      provisioningState: v.provisioningState,
      state: v.state,
      connectionProfile: {
        ...(authority ? (v.osType === 'Windows' ? { rdpAuthority: authority } : { sshAuthority: authority }) : {}),
        ...(v.adminUsername ? { adminUsername: v.adminUsername } : {}),
      },
      ...(v.claimedBy ? { claimedByUserId: v.claimedBy } : {}),
      vmType: v.vmType,
      ...(v.statusCode ? { statusCode: v.statusCode } : {}),
      ...(v.statusMessage ? { statusMessage: v.statusMessage } : {}),
      ...(exportStatus ? { exportStatus } : {}),
    },
  };
}

export function renderLabUser(u: LabUser) {
  return {
    id: `${labArmId({ subscriptionId: u.subscriptionId, resourceGroup: u.resourceGroup, name: u.labName })}/users/${u.name}`,
    name: u.name,
    type: 'Microsoft.LabServices/labs/users',
    systemData: { createdBy: u.createdBy, createdAt: u.createdAt },
    properties: {
      email: u.email,
      ...(u.displayName ? { displayName: u.displayName } : {}),
      registrationState: u.registrationState,
      invitationState: u.invitationState,
      ...(u.invitationSent ? { invitationSent: u.invitationSent } : {}),
      totalUsage: secondsToDuration(u.totalUsageSeconds),
      additionalUsageQuota: secondsToDuration(u.additionalUsageQuotaSeconds),
      provisioningState: 'Succeeded',
    },
  };
}

export function renderSchedule(x: LabSchedule) {
  return {
    id: `${labArmId({ subscriptionId: x.subscriptionId, resourceGroup: x.resourceGroup, name: x.labName })}/schedules/${x.name}`,
    name: x.name,
    type: 'Microsoft.LabServices/labs/schedules',
    systemData: { createdBy: x.createdBy, createdAt: x.createdAt },
    properties: {
      ...(x.startAt ? { startAt: x.startAt } : {}),
      stopAt: x.stopAt,
      ...(x.recurrence ? { recurrencePattern: x.recurrence } : {}),
      timeZoneId: x.timeZoneId,
      ...(x.notes ? { notes: x.notes } : {}),
      provisioningState: 'Succeeded',
    },
  };
}

type Req = FastifyRequest<{ Params: { sub: string; rg: string; lab: string; vm: string } }>;

export function labServicesRoutes(s: Services): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify as unknown as App;
    const publicUrl = s.config.publicUrl;
    const pageSize = s.config.api.defaultPageSize;

    // ---- lab plans ----
    app.get(
      '/subscriptions/:sub/providers/Microsoft.LabServices/labPlans',
      { config: STAFF_ONLY, schema: { tags: ['labPlans'], summary: 'List lab plans in a subscription', params: Type.Object({ sub: Type.String() }) } },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        return page(req, publicUrl, await s.labPlans.list(req.params.sub, undefined, pq.after, pq.limit + 1), pq, (p) => p.key, renderPlan);
      },
    );
    app.get(
      `${RG}/labPlans`,
      {
        config: STAFF_ONLY,
        schema: { tags: ['labPlans'], summary: 'List lab plans in a resource group', params: Type.Object({ sub: Type.String(), rg: Type.String() }) },
      },
      async (req) => {
        const pq = pageQuery(req, pageSize);
        return page(req, publicUrl, await s.labPlans.list(req.params.sub, req.params.rg, pq.after, pq.limit + 1), pq, (p) => p.key, renderPlan);
      },
    );
    app.get(`${RG}/labPlans/:plan`, { config: STAFF_ONLY, schema: { tags: ['labPlans'], summary: 'Get a lab plan', params: PlanParams } }, async (req) =>
      renderPlan(await s.labPlans.get(req.params.sub, req.params.rg, req.params.plan)),
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
          body: Body,
        },
        handler: async (req, reply) => {
          const { plan, created } = await s.labPlans.createOrUpdate(
            req.principal,
            req.params.sub,
            req.params.rg,
            req.params.plan,
            req.body as never,
            method === 'PUT' ? 'put' : 'patch',
            preconditions(req),
          );
          return reply.status(created ? 201 : 200).send(renderPlan(plan));
        },
      });
    }
    app.delete(
      `${RG}/labPlans/:plan`,
      { config: ADMIN, schema: { tags: ['labPlans'], summary: 'Delete a lab plan that has no labs', params: PlanParams } },
      async (req, reply) => reply.status((await s.labPlans.delete(req.params.sub, req.params.rg, req.params.plan, preconditions(req))) ? 200 : 204).send(),
    );

    // ---- lab plan images ----
    app.get(
      `${RG}/labPlans/:plan/images`,
      {
        config: STAFF_ONLY,
        schema: {
          tags: ['labPlans'],
          summary: 'Images creators may use; includeHidden=true (admins) lists the others with the reasons they are hidden',
          params: PlanParams,
          querystring: Type.Object({ 'api-version': Type.Optional(Type.String()), includeHidden: Type.Optional(Type.String()) }),
        },
      },
      async (req) => {
        const includeHidden = /^(true|1|yes)$/i.test(req.query.includeHidden ?? '');
        LabPlanService.checkIncludeHidden(req.principal, includeHidden);
        const plan = await s.labPlans.requirePlanRow(s.store.db, req.params.sub, req.params.rg, req.params.plan);
        const planId = labPlanArmId({ subscriptionId: plan.subscription_id, resourceGroup: plan.resource_group, name: plan.name });
        const all = await s.labPlans.images(plan);
        // Azure lists every eligible image with its enabledState; creators see only the enabled ones.
        const shown = all.filter((i) => {
          if (includeHidden) return true;
          const structural = i.hiddenReasons.filter((r) => r !== 'Disabled');
          return structural.length === 0 && (req.principal.role === 'admin' || i.enabled);
        });
        return { value: shown.map((i) => renderPlanImage(planId, i, includeHidden)) };
      },
    );
    app.get(
      `${RG}/labPlans/:plan/images/:image`,
      {
        config: STAFF_ONLY,
        schema: {
          tags: ['labPlans'],
          summary: 'One image of a lab plan',
          params: Type.Object({ sub: Type.String(), rg: Type.String(), plan: Type.String(), image: Type.String() }),
        },
      },
      async (req) => {
        const plan = await s.labPlans.requirePlanRow(s.store.db, req.params.sub, req.params.rg, req.params.plan);
        const planId = labPlanArmId({ subscriptionId: plan.subscription_id, resourceGroup: plan.resource_group, name: plan.name });
        return renderPlanImage(planId, await s.labPlans.image(plan, req.params.image), req.principal.role === 'admin');
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
          params: Type.Object({ sub: Type.String(), rg: Type.String(), plan: Type.String(), image: Type.String() }),
          body: Type.Object({ properties: Type.Object({ enabledState: Type.String() }) }),
        },
        handler: async (req) => {
          const plan = await s.labPlans.requirePlanRow(s.store.db, req.params.sub, req.params.rg, req.params.plan);
          const planId = labPlanArmId({ subscriptionId: plan.subscription_id, resourceGroup: plan.resource_group, name: plan.name });
          return renderPlanImage(planId, await s.labPlans.setEnabled(req.principal, plan, req.params.image, req.body.properties.enabledState), true);
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
          body: Type.Object({
            name: Type.Optional(Type.String()),
            labVirtualMachineId: Type.Optional(Type.String()),
            updateExisting: Type.Optional(Type.Boolean()),
          }),
        },
      },
      async (req, reply) => {
        const r = await s.labExport.saveImage(req.principal, req.params.sub, req.params.rg, req.params.plan, req.body);
        lroHeaders(reply, req, publicUrl, r.operation);
        return reply.status(202).send({ imageId: r.imageId, version: r.version });
      },
    );

    // ---- labs ----
    app.get(
      '/subscriptions/:sub/providers/Microsoft.LabServices/labs',
      { config: READ, schema: { tags: ['labs'], summary: 'List labs (students: the labs they are in)', params: Type.Object({ sub: Type.String() }) } },
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
      { config: READ, schema: { tags: ['labs'], summary: 'List labs in a resource group', params: Type.Object({ sub: Type.String(), rg: Type.String() }) } },
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
    app.get(`${RG}/labs/:lab`, { config: READ, schema: { tags: ['labs'], summary: 'Get a lab', params: LabParams } }, async (req) =>
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
          body: Body,
        },
        handler: async (req, reply) => {
          // customData (a labforge extension) is base64, as on Azure VMs.
          const vp = (req.body.properties as { virtualMachineProfile?: { customData?: string } } | undefined)?.virtualMachineProfile;
          if (vp?.customData !== undefined) vp.customData = decodeCustomData(vp.customData);
          const { lab, created, operation } = await s.labs.createOrUpdate(
            req.principal,
            req.params.sub,
            req.params.rg,
            req.params.lab,
            req.body as never,
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
      { config: STAFF_ONLY, schema: { tags: ['labs'], summary: 'Delete a lab with its VMs', params: LabParams } },
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
        },
      },
      async (req, reply) => {
        const op = await s.labs.publish(req.principal, req.params.sub, req.params.rg, req.params.lab);
        lroHeaders(reply, req, publicUrl, op);
        return reply.status(202).send();
      },
    );

    // ---- lab VMs ----
    const exportStatusOf = async (vm: LabVm) => {
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
        ...(op.error ? { error: op.error } : {}),
      };
    };
    app.get(
      `${RG}/labs/:lab/virtualMachines`,
      { config: READ, schema: { tags: ['labs'], summary: "A lab's VMs (students: their own)", params: LabParams } },
      async (req) => {
        const vms = await s.labVms.list(req.principal, req.params.sub, req.params.rg, req.params.lab);
        const value = [];
        for (const v of vms) value.push(renderLabVm(v, await exportStatusOf(v), s.vms.connectHost));
        return { value };
      },
    );
    app.get(`${RG}/labs/:lab/virtualMachines/:vm`, { config: READ, schema: { tags: ['labs'], summary: 'One lab VM', params: LabVmParams } }, async (req) => {
      const v = await s.labVms.get(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.vm);
      return renderLabVm(v, await exportStatusOf(v), s.vms.connectHost);
    });
    const action = (a: 'start' | 'stop' | 'reimage' | 'redeploy') => async (req: Req, reply: FastifyReply) => {
      const op = await s.labVms.action(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.vm, a);
      lroHeaders(reply, req, publicUrl, op);
      return reply.status(202).send();
    };
    for (const a of ['start', 'stop', 'reimage', 'redeploy'] as const) {
      app.post(
        `${RG}/labs/:lab/virtualMachines/:vm/${a}`,
        { config: READ, schema: { tags: ['labs'], summary: `${a} a lab VM (long-running)`, params: LabVmParams } },
        action(a),
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
          body: Type.Object({ username: Type.Optional(Type.String()), password: Type.Optional(Type.String()) }),
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
        schema: { tags: ['labs'], summary: 'labforge: one-minute console WebSocket URLs of a lab VM (its student and lab staff only)', params: LabVmParams },
      },
      async (req) => {
        const v = await s.labVms.get(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.vm);
        return consoleUrls(req, publicUrl, await s.consoleTickets.issue(req.principal, v));
      },
    );

    // ---- schedules ----
    const ScheduleParams = Type.Object({ sub: Type.String(), rg: Type.String(), lab: Type.String(), schedule: Type.String() });
    app.get(`${RG}/labs/:lab/schedules`, { config: STAFF_ONLY, schema: { tags: ['labs'], summary: "A lab's schedules", params: LabParams } }, async (req) => ({
      value: (await s.schedules.list(req.principal, req.params.sub, req.params.rg, req.params.lab)).map(renderSchedule),
    }));
    app.get(
      `${RG}/labs/:lab/schedules/:schedule`,
      { config: STAFF_ONLY, schema: { tags: ['labs'], summary: 'One schedule', params: ScheduleParams } },
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
          body: Type.Object({ properties: Type.Record(Type.String(), Type.Unknown()) }),
        },
        handler: async (req, reply) => {
          const { schedule, created } = await s.schedules.put(
            req.principal,
            req.params.sub,
            req.params.rg,
            req.params.lab,
            req.params.schedule,
            req.body.properties as never,
            method === 'PUT' ? 'put' : 'patch',
          );
          return reply.status(created ? 201 : 200).send(renderSchedule(schedule));
        },
      });
    }
    app.delete(
      `${RG}/labs/:lab/schedules/:schedule`,
      { config: STAFF_ONLY, schema: { tags: ['labs'], summary: 'Delete a schedule', params: ScheduleParams } },
      async (req, reply) =>
        reply.status((await s.schedules.delete(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.schedule)) ? 200 : 204).send(),
    );

    // ---- lab users ----
    app.get(
      `${RG}/labs/:lab/users`,
      { config: READ, schema: { tags: ['labs'], summary: "A lab's users (students: themselves)", params: LabParams } },
      async (req) => ({
        value: (await s.labUsers.list(req.principal, req.params.sub, req.params.rg, req.params.lab)).map(renderLabUser),
      }),
    );
    app.get(`${RG}/labs/:lab/users/:user`, { config: READ, schema: { tags: ['labs'], summary: 'One lab user', params: LabUserParams } }, async (req) =>
      renderLabUser(await s.labUsers.get(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.user)),
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
          body: Type.Object({ properties: Type.Object({ email: Type.Optional(Type.String()), additionalUsageQuota: Type.Optional(Type.String()) }) }),
        },
        handler: async (req, reply) => {
          const { user, created } = await s.labUsers.put(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.user, req.body.properties);
          return reply.status(created ? 201 : 200).send(renderLabUser(user));
        },
      });
    }
    app.delete(
      `${RG}/labs/:lab/users/:user`,
      { config: STAFF_ONLY, schema: { tags: ['labs'], summary: 'Remove a student; their seat goes back to the lab', params: LabUserParams } },
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
          body: Type.Optional(Type.Object({ text: Type.Optional(Type.String()) })),
        },
      },
      async (req) => {
        const r = await s.labUsers.invite(req.principal, req.params.sub, req.params.rg, req.params.lab, req.params.user);
        return { ...renderLabUser(r.user), registrationCode: r.registrationCode };
      },
    );
  };
}
