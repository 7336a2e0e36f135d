// A QEMU wrapper that behaves like QEMU on a host whose /dev/kvm is broken,
// and runs the real QEMU for everything else (so VMs under software emulation
// really boot). Its mode is read from a file beside it at every call:
//   probe-fails  every run with accel=kvm ends at once with a KVM emulation failure (probe and VMs alike)
//   start-fails  the probe passes; a VM started with accel=kvm ends at once with a KVM emulation failure
//   late-fails   the probe passes; a VM started with accel=kvm runs (really, under software emulation)
//                for a second, then QEMU writes a KVM emulation failure to its log and ends
//   probe-passes the probe passes; everything else runs the real QEMU unchanged (on a host whose real
//                KVM is broken, VMs then meet the real failure)
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type BrokenKvmMode = 'probe-fails' | 'start-fails' | 'late-fails' | 'probe-passes';

const SCRIPT = `#!/bin/bash
# Written by labforge's tests: a QEMU on a host where KVM cannot run guests.
here=$(dirname "$0")
mode=$(cat "$here/mode")
real=qemu-system-x86_64
kvm=0; probe=0; serial=""; dlog=""; pidfile=""
args=()
prev=""
for a in "$@"; do
  case "$a" in *accel=kvm*) kvm=1 ;; esac
  case "$a" in *labforge.probe*) probe=1 ;; esac
  [ "$prev" = "-serial" ] && serial=\${a#file:}
  [ "$prev" = "-D" ] && dlog=$a
  [ "$prev" = "-pidfile" ] && pidfile=$a
  if [ "$prev" = "-cpu" ] && [ "$a" = host ]; then a=max; fi
  args+=("\${a//accel=kvm/accel=tcg}")
  prev=$a
done
kvm_error() {
  printf 'KVM internal error. Suberror: 1\\nextra data[0]: 0x0000000000000001\\nemulation failure\\nEAX=001008cb EBX=8b001000 ECX=00000001 EDX=001008ac\\nCode=eb de ff 0d a8 39 00 00 75 06 <cf> c3 90 90\\n'
}
[ $kvm = 1 ] || exec "$real" "$@"
if [ $probe = 1 ] && [ "$mode" != probe-fails ]; then
  # A quick probe passes on such hosts.
  echo "LABFORGE-PROBE-OK simulated" >"$serial"
  exec sleep 60
fi
[ "$mode" = probe-passes ] && exec "$real" "$@"
if [ "$mode" = late-fails ] && [ $probe = 0 ]; then
  "$real" "\${args[@]}" || exit $?
  ( sleep 1; kvm_error >>"$dlog"; kill -9 "$(cat "$pidfile")" ) </dev/null >/dev/null 2>&1 &
  exit 0
fi
kvm_error >&2
exit 1
`;

export interface BrokenKvm {
  /** The wrapper to give as the QEMU binary (LABFORGE_QEMU). */
  qemu: string;
  /** A file that exists and can be opened, standing in for /dev/kvm on hosts without one (LABFORGE_KVM_DEVICE). */
  kvmDevice: string;
  /** A cache of acceleration verdicts of its own (LABFORGE_ACCEL_CACHE). */
  cacheFile: string;
  dir: string;
  setMode(mode: BrokenKvmMode): void;
  /** The environment of a server or CLI that uses this wrapper. */
  env: Record<string, string>;
}

export function brokenKvm(mode: BrokenKvmMode): BrokenKvm {
  const dir = mkdtempSync(join(tmpdir(), 'labforge-broken-kvm-'));
  const qemu = join(dir, 'qemu-system-x86_64');
  writeFileSync(qemu, SCRIPT);
  chmodSync(qemu, 0o755);
  const kvmDevice = join(dir, 'kvm');
  writeFileSync(kvmDevice, '');
  const cacheFile = join(dir, 'acceleration.json');
  const setMode = (m: BrokenKvmMode) => writeFileSync(join(dir, 'mode'), m);
  setMode(mode);
  return {
    qemu,
    kvmDevice,
    cacheFile,
    dir,
    setMode,
    env: { LABFORGE_QEMU: qemu, LABFORGE_KVM_DEVICE: kvmDevice, LABFORGE_ACCEL_CACHE: cacheFile },
  };
}
