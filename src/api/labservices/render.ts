// Microsoft.LabServices' JSON (api-version 2022-08-01 shapes): lab plans and
// their images, labs, lab VMs, lab users and schedules as the wire contract
// (src/contract/labservices) declares them. The one place these shapes are
// rendered, including what only lab staff see (a lab's registration code).
import type {
  ExportStatus,
  LabPlanImage as LabPlanImageWire,
  LabPlan as LabPlanWire,
  LabUser as LabUserWire,
  LabVm as LabVmWire,
  Lab as LabWire,
  Schedule,
} from '../../contract/index.js';
import { galleryArmId, labArmId, labPlanArmId, labVmArmId } from '../../lib/arm-id.js';
import type { Principal } from '../../services/common.js';
import { type Lab, secondsToDuration } from '../../services/lab.service.js';
import type { LabPlan, LabPlanImage } from '../../services/lab-plan.service.js';
import type { LabUser } from '../../services/lab-user.service.js';
import type { LabVm } from '../../services/lab-vm.service.js';
import type { LabSchedule } from '../../services/schedule.service.js';
import { systemData } from '../arm/arm.js';

export function renderPlan(p: LabPlan): LabPlanWire {
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
      sharedGalleryId: p.sharedGalleryId || undefined,
      supportInfo: p.supportInfo || undefined,
      linkedLmsInstance: p.linkedLmsInstance || undefined,
      provisioningState: p.provisioningState,
    },
  };
}

export function renderPlanImage(planId: string, i: LabPlanImage, withReasons: boolean): LabPlanImageWire {
  const image = i.imageRecord;
  return {
    id: `${planId}/images/${i.name}`,
    name: i.name,
    type: 'Microsoft.LabServices/labPlans/images',
    properties: {
      enabledState: i.enabled ? 'Enabled' : 'Disabled',
      provisioningState: 'Succeeded',
      displayName: i.name,
      description: image.description ?? undefined,
      author: image.identifier.publisher,
      osType: image.osType,
      osState: image.osState,
      offer: image.identifier.offer,
      publisher: image.identifier.publisher,
      sku: image.identifier.sku,
      version: i.latestVersion?.name,
      sharedGalleryId: galleryArmId(i.galleryRecord),
      availableRegions: i.availableRegions,
      termsStatus: 'Disabled',
      // labforge: what the image is and why it may be hidden from creators.
      osDiskSizeGB: i.osDiskSizeGB ?? undefined,
      dataDiskCount: i.dataDiskCount,
      builtin: i.builtin,
      hiddenReasons: withReasons ? i.hiddenReasons : undefined,
    },
  };
}

export function renderLab(l: Lab, p: Principal): LabWire {
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
        adminUser: vp.adminUser || undefined,
        nonAdminUser: vp.nonAdminUser || undefined,
      },
      securityProfile: staff ? l.securityProfile : { openAccess: l.securityProfile.openAccess },
      labPlanId: l.labPlanId || undefined,
      title: l.title,
      description: l.description || undefined,
      provisioningState: l.provisioningState,
      state: l.state,
    },
  };
}

export function renderLabVm(v: LabVm, exportStatus?: ExportStatus, connectHost = '127.0.0.1'): LabVmWire {
  const authority = v.hostPort ? `${connectHost}:${v.hostPort}` : undefined;
  const windows = v.osType === 'Windows';
  return {
    id: labVmArmId({ subscriptionId: v.subscriptionId, resourceGroup: v.resourceGroup, labName: v.labName, name: v.vmName }),
    name: v.vmName,
    type: 'Microsoft.LabServices/labs/virtualMachines',
    systemData: systemData(v),
    properties: {
      provisioningState: v.provisioningState,
      state: v.state,
      connectionProfile: {
        rdpAuthority: windows ? authority : undefined,
        sshAuthority: windows ? undefined : authority,
        adminUsername: v.adminUsername || undefined,
      },
      claimedByUserId: v.claimedBy || undefined,
      vmType: v.vmType,
      statusCode: v.statusCode || undefined,
      statusMessage: v.statusMessage || undefined,
      exportStatus,
    },
  };
}

export function renderLabUser(u: LabUser): LabUserWire {
  return {
    id: `${labArmId({ subscriptionId: u.subscriptionId, resourceGroup: u.resourceGroup, name: u.labName })}/users/${u.name}`,
    name: u.name,
    type: 'Microsoft.LabServices/labs/users',
    systemData: { createdBy: u.createdBy, createdAt: u.createdAt },
    properties: {
      email: u.email,
      displayName: u.displayName || undefined,
      registrationState: u.registrationState,
      invitationState: u.invitationState,
      invitationSent: u.invitationSent || undefined,
      totalUsage: secondsToDuration(u.totalUsageSeconds),
      additionalUsageQuota: secondsToDuration(u.additionalUsageQuotaSeconds),
      provisioningState: 'Succeeded',
    },
  };
}

export function renderSchedule(x: LabSchedule): Schedule {
  return {
    id: `${labArmId({ subscriptionId: x.subscriptionId, resourceGroup: x.resourceGroup, name: x.labName })}/schedules/${x.name}`,
    name: x.name,
    type: 'Microsoft.LabServices/labs/schedules',
    systemData: { createdBy: x.createdBy, createdAt: x.createdAt },
    properties: {
      startAt: x.startAt || undefined,
      stopAt: x.stopAt,
      recurrencePattern: x.recurrence || undefined,
      timeZoneId: x.timeZoneId,
      notes: x.notes || undefined,
      provisioningState: 'Succeeded',
    },
  };
}
