// The QEMU command line of a VM: q35 machine, BIOS (Hyper-V generation V1) or
// UEFI/OVMF (V2), virtio disks, NIC and random-number device, user-mode
// networking with one forwarded port (on loopback unless configured), a serial log, a QMP socket
// and a VNC display on a unix socket, a pvpanic device so a guest's crash is seen. QEMU daemonizes,
// so VMs outlive the server.
import type { VmSpec } from '../compute-driver.js';

export interface VmPaths {
  dir: string;
  pidFile: string;
  qmpSocket: string;
  vncSocket: string;
  serialLog: string;
  /** What QEMU itself writes (errors, a KVM internal error with its register dump); its stderr goes to stderrLog. */
  qemuLog: string;
  stderrLog: string;
  /** UEFI variable store (a private copy per VM), for V2 only. */
  uefiVars: string;
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export function qemuArgs(spec: VmSpec, paths: VmPaths, accel: 'kvm' | 'tcg', hostPort: number | undefined, forwardAddress = '127.0.0.1'): string[] {
  const args = [
    '-name',
    `labforge-${spec.id},process=labforge-${spec.id}`,
    '-machine',
    `q35,accel=${accel}`,
    '-cpu',
    accel === 'kvm' ? 'host' : 'max',
    '-smp',
    String(spec.vcpus),
    '-m',
    String(spec.memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-vnc',
    `unix:${paths.vncSocket}`,
    '-vga',
    'std',
    '-chardev',
    `socket,id=qmp,path=${paths.qmpSocket},server=on,wait=off`,
    '-mon',
    'chardev=qmp,mode=control',
    '-chardev',
    `file,id=serial0,path=${paths.serialLog},append=on`,
    '-serial',
    'chardev:serial0',
    '-device',
    'virtio-rng-pci',
    // A guest kernel that panics tells QEMU (pvpanic), which holds the VM in guest-panicked so labforge can say so.
    '-device',
    'pvpanic',
    '-action',
    'panic=pause',
    // QEMU's own errors (a KVM emulation failure among them) go to this file; it also keeps stderr open after -daemonize.
    '-D',
    paths.qemuLog,
    '-pidfile',
    paths.pidFile,
    '-daemonize',
  ];
  if (spec.hyperVGeneration === 'V2') {
    args.push('-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${paths.uefiVars}`);
  }
  spec.disks.forEach((d, i) => {
    args.push(
      '-drive',
      `file=${d.path},format=${d.format},if=none,id=disk${i},cache=writeback,discard=unmap${d.readOnly ? ',readonly=on' : ''}`,
      '-device',
      `virtio-blk-pci,drive=disk${i}${i === 0 ? ',bootindex=0' : ''}`,
    );
  });
  if (spec.seed) {
    args.push('-drive', `file=${spec.seed.path},format=${spec.seed.format},if=none,id=seed,readonly=on`, '-device', 'virtio-blk-pci,drive=seed');
  }
  const fwd = spec.forward && hostPort ? `,hostfwd=tcp:${forwardAddress}:${hostPort}-:${spec.forward.guestPort}` : '';
  args.push('-netdev', `user,id=net0${fwd}`, '-device', 'virtio-net-pci,netdev=net0');
  return args;
}
