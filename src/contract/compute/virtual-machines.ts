// Microsoft.Compute/virtualMachines: VMs made from gallery image versions,
// their instance view and console tickets.
import Type, { type Static } from 'typebox';
import { SystemData } from '../arm.js';
import { StringEnum, StringMap } from '../schema.js';
import { OS_STATES, OS_TYPES } from './images.js';

/** A VM's power state with Azure Lab Services' names (labforge's `properties.state`). */
export const VM_POWER_STATES = ['Stopped', 'Starting', 'Running', 'Stopping', 'ResettingPassword', 'Reimaging', 'Redeploying', 'Failed'] as const;
export type VmPowerState = (typeof VM_POWER_STATES)[number];

export const InstanceViewStatus = Type.Object({
  code: Type.String({ description: 'ProvisioningState/…, PowerState/…, VMFailure/<code> or VMNotice/<code>' }),
  level: StringEnum(['Info', 'Warning', 'Error']),
  displayStatus: Type.String(),
  message: Type.Optional(Type.String()),
});
export type InstanceViewStatus = Static<typeof InstanceViewStatus>;

export const InstanceView = Type.Object({
  computerName: Type.String(),
  osName: Type.String(),
  hyperVGeneration: Type.String(),
  statuses: Type.Array(InstanceViewStatus),
});
export type InstanceView = Static<typeof InstanceView>;

/** Where to connect while the VM runs: 127.0.0.1:<port> forwarded to the guest's SSH (Linux) or RDP (Windows) port. */
export const ConnectionAuthority = Type.Object({ sshAuthority: Type.Optional(Type.String()), rdpAuthority: Type.Optional(Type.String()) });

export const VirtualMachine = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  location: Type.String(),
  tags: StringMap(),
  etag: Type.String(),
  properties: Type.Object({
    vmId: Type.String(),
    hardwareProfile: Type.Object({
      vmSize: Type.String(),
      vmSizeProperties: Type.Object({ vCPUsAvailable: Type.Number() }),
      memoryMiB: Type.Number(),
    }),
    storageProfile: Type.Object({
      imageReference: Type.Object({ id: Type.String(), exactVersion: Type.Optional(Type.String()) }),
      osDisk: Type.Object({ osType: StringEnum(OS_TYPES), createOption: Type.String(), name: Type.String() }),
    }),
    osProfile: Type.Optional(
      Type.Object({
        computerName: Type.String(),
        adminUsername: Type.Optional(Type.String()),
        linuxConfiguration: Type.Optional(
          Type.Object({ ssh: Type.Object({ publicKeys: Type.Array(Type.Object({ path: Type.String(), keyData: Type.String() })) }) }),
        ),
      }),
    ),
    provisioningState: Type.String(),
    instanceView: InstanceView,
    state: StringEnum(VM_POWER_STATES),
    statusCode: Type.Optional(
      Type.String({ description: 'Why the VM is Failed (QemuStartFailed, DiskMissing, GuestCrashed, …), or what its user should know while it runs' }),
    ),
    statusMessage: Type.Optional(Type.String()),
    generalized: Type.Boolean(),
    owner: Type.String(),
    osState: StringEnum(OS_STATES),
    connectionProfile: ConnectionAuthority,
  }),
  systemData: SystemData,
});
export type VirtualMachine = Static<typeof VirtualMachine>;

/** PUT (create; on an existing VM only tags and owner change) and PATCH of a VM. */
export const VirtualMachineInput = Type.Object({
  location: Type.Optional(Type.String()),
  tags: Type.Optional(StringMap()),
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
          customData: Type.Optional(Type.String({ description: 'base64 of a #cloud-config document merged into the first-boot user-data' })),
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
export type VirtualMachineInput = Static<typeof VirtualMachineInput>;

/** WebSocket URLs of a VM's screen (VNC, for noVNC) and serial log, each opening once within a minute. */
export const ConsoleUrls = Type.Object({ expiresAt: Type.String(), vncUrl: Type.String(), serialUrl: Type.String() });
export type ConsoleUrls = Static<typeof ConsoleUrls>;
