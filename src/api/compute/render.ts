// Microsoft.Compute's JSON: galleries, image definitions, image versions and
// VMs as the wire contract (src/contract/compute) declares them, from the
// services' plain objects. The one place these shapes are rendered.
import type { FastifyRequest } from 'fastify';
import type {
  ConsoleUrls,
  GalleryImage as GalleryImageWire,
  Gallery as GalleryWire,
  ImageVersion as ImageVersionWire,
  InstanceView,
  InstanceViewStatus,
  VirtualMachine as VirtualMachineWire,
} from '../../contract/index.js';
import { galleryArmId, imageArmId, versionArmId, vmArmId } from '../../lib/arm-id.js';
import type { Gallery, GalleryImage } from '../../services/gallery.service.js';
import type { ImageVersion } from '../../services/image-version.service.js';
import type { VirtualMachine } from '../../services/vm.service.js';
import { baseUrl, systemData } from '../arm/arm.js';

export function renderGallery(g: Gallery): GalleryWire {
  return {
    id: galleryArmId(g),
    name: g.name,
    type: 'Microsoft.Compute/galleries',
    location: g.location,
    tags: g.tags,
    etag: g.etag,
    properties: {
      description: g.description ?? undefined,
      identifier: { uniqueName: g.uniqueName },
      provisioningState: g.provisioningState,
    },
    systemData: systemData(g),
  };
}

export function renderImage(i: GalleryImage): GalleryImageWire {
  // Absent optional fields are left undefined (JSON omits them) rather than spread in: spreads make slow objects.
  return {
    id: imageArmId(i),
    name: i.name,
    type: 'Microsoft.Compute/galleries/images',
    location: i.location,
    tags: i.tags,
    etag: i.etag,
    properties: {
      description: i.description ?? undefined,
      eula: i.eula ?? undefined,
      privacyStatementUri: i.privacyStatementUri ?? undefined,
      releaseNoteUri: i.releaseNoteUri ?? undefined,
      osType: i.osType,
      osState: i.osState,
      hyperVGeneration: i.hyperVGeneration,
      endOfLifeDate: i.endOfLifeDate ?? undefined,
      identifier: i.identifier,
      recommended: i.recommended,
      disallowed: i.disallowed.diskTypes ? i.disallowed : undefined,
      purchasePlan: i.purchasePlan ?? undefined,
      features: i.features.length ? i.features : undefined,
      architecture: i.architecture,
      provisioningState: i.provisioningState,
    },
    systemData: systemData(i),
  };
}

function aggregatedState(v: ImageVersion): string {
  const states = Object.values(v.replication).map((r) => r.state);
  if (states.length === 0) return 'Unknown';
  if (states.includes('Failed')) return 'Failed';
  if (states.every((s) => s === 'Completed')) return 'Completed';
  return 'InProgress';
}

export function renderVersion(v: ImageVersion, expandReplication: boolean, usedBy?: string[]): ImageVersionWire {
  const disk = (d: ImageVersion['storage']['osDisk']) => ({
    sizeInGB: d.sizeGB,
    hostCaching: d.hostCaching,
    lun: d.lun,
    source: d.source.kind === 'empty' ? { uri: d.source.uri } : undefined,
  });
  const storage = v.storage;
  return {
    id: versionArmId(v),
    name: v.name,
    type: 'Microsoft.Compute/galleries/images/versions',
    location: v.location,
    tags: v.tags,
    etag: v.etag,
    properties: {
      publishingProfile: {
        targetRegions: v.targetRegions,
        replicaCount: v.replicaCount,
        excludeFromLatest: v.excludeFromLatest,
        publishedDate: v.publishedDate,
        endOfLifeDate: v.endOfLifeDate || undefined,
        storageAccountType: v.targetRegions[0]?.storageAccountType ?? 'Standard_LRS',
      },
      provisioningState: v.provisioningState,
      storageProfile: {
        source: storage.sourceVirtualMachineId ? { virtualMachineId: storage.sourceVirtualMachineId } : storage.sourceId ? { id: storage.sourceId } : undefined,
        osDiskImage: disk(storage.osDisk),
        dataDiskImages: storage.dataDisks.length ? storage.dataDisks.map(disk) : undefined,
      },
      // labforge: what still uses the version (it cannot be deleted while anything does).
      usedBy: usedBy?.length ? usedBy : undefined,
      replicationStatus: expandReplication
        ? {
            aggregatedState: aggregatedState(v),
            summary: Object.entries(v.replication).map(([region, r]) => ({ region, state: r.state, details: r.details || undefined, progress: r.progress })),
          }
        : undefined,
    },
    systemData: systemData(v),
  };
}

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
export function instanceView(v: VirtualMachine): InstanceView {
  const [code, displayStatus] = POWER_CODES[v.state] ?? ['PowerState/unknown', v.state];
  const provisioningFailed = v.provisioningState === 'Failed';
  const statuses: InstanceViewStatus[] = [
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

export function renderVm(v: VirtualMachine, connectHost = '127.0.0.1'): VirtualMachineWire {
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
      osProfile:
        v.osState === 'Generalized'
          ? {
              computerName: v.computerName,
              adminUsername: v.adminUsername ?? undefined,
              linuxConfiguration:
                v.osType === 'Linux' && v.sshPublicKeys.length
                  ? { ssh: { publicKeys: v.sshPublicKeys.map((k) => ({ path: `/home/${v.adminUsername}/.ssh/authorized_keys`, keyData: k })) } }
                  : undefined,
            }
          : undefined,
      provisioningState: v.provisioningState,
      instanceView: instanceView(v),
      // labforge: the power state with Azure Lab Services' names, and how to connect.
      state: v.state,
      statusCode: v.statusCode || undefined,
      statusMessage: v.statusMessage || undefined,
      generalized: v.generalized,
      owner: v.owner,
      osState: v.osState,
      connectionProfile: authority ? (v.osType === 'Windows' ? { rdpAuthority: authority } : { sshAuthority: authority }) : {},
    },
    systemData: systemData(v),
  };
}

/** The WebSocket URLs a console ticket opens. */
export function consoleUrls(req: FastifyRequest, publicUrl: string | undefined, t: { ticket: string; expiresAt: string }): ConsoleUrls {
  const ws = baseUrl(req, publicUrl).replace(/^http/, 'ws');
  return { expiresAt: t.expiresAt, vncUrl: `${ws}/consoles/${t.ticket}/vnc`, serialUrl: `${ws}/consoles/${t.ticket}/serial` };
}
