#!/usr/bin/env bash
# Builds the labforge test guest: a small raw disk image that boots through the
# firmware (SeaBIOS: MBR + syslinux on a FAT partition; OVMF: systemd-boot on the
# same partition) into a Debian kernel and a busybox system, and applies NoCloud
# seeds. Everything comes from Debian packages. See docs/TEST-GUEST.md.
#
#   bash scripts/build-test-guest.sh [OUT_DIR]     (default: .labforge-data/test-guest)
#
# Writes OUT_DIR/guest.raw (128 MiB, sparse), OUT_DIR/guest.info, OUT_DIR/stamp, and the kernel and
# initramfs alone (OUT_DIR/probe-vmlinuz, OUT_DIR/probe-initrd.img) for the acceleration probe.
# Skips the build when guest.raw exists and the stamp (a hash of this script,
# scripts/guest/ and the versions of the Debian packages used) is unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GUEST_SRC="$ROOT/scripts/guest"
OUT="${1:-$ROOT/.labforge-data/test-guest}"
DISK_MIB=128
BOOT_MIB=32
# Fixed identities and times so that two builds give the same bytes where the tools allow it.
export SOURCE_DATE_EPOCH=1700000000
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
DISK_ID=0x4c464731
FAT_ID=4C464731
ROOT_UUID=6c616266-6f72-4765-8775-657374000001

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-test-guest: %s\n' "$*" >&2; exit 1; }

# Packages this script and the test guest's test need. linux-image-amd64 pulls the current kernel.
PACKAGES=(linux-image-amd64 kmod busybox-static syslinux syslinux-common systemd-boot-efi mtools dosfstools
  e2fsprogs fdisk cpio gzip qemu-utils qemu-system-x86 genisoimage ovmf)
ensure_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "not a Debian-like system; needed: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages. Run:  sudo apt-get install -y --no-install-recommends ${missing[*]}"
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
  fi
}
ensure_packages

# The newest installed kernel that has its modules.
KVER=""
for m in /lib/modules/*; do
  v=${m##*/}
  [ -f "/boot/vmlinuz-$v" ] && KVER=$(printf '%s\n%s\n' "$KVER" "$v" | sort -V | tail -n 1)
done
[ -n "$KVER" ] || die "no kernel found in /boot (install linux-image-amd64)"
[ -r "/boot/vmlinuz-$KVER" ] || die "/boot/vmlinuz-$KVER is not readable (Debian makes it root-only): run as root"
MODDIR=/lib/modules/$KVER

pkgver() { dpkg-query -W -f='${Package}=${Version}\n' "$@" 2>/dev/null || true; }
STAMP=$(
  {
    sha256sum "$ROOT/scripts/build-test-guest.sh"
    (cd "$GUEST_SRC" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    (cd "$GUEST_SRC" && find . -type f -perm -u+x | LC_ALL=C sort)
    echo "kernel=$KVER"
    pkgver "linux-image-$KVER" busybox-static syslinux syslinux-common systemd-boot-efi
  } | sha256sum | cut -d' ' -f1
)
if [ -f "$OUT/guest.raw" ] && [ -f "$OUT/probe-initrd.img" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$STAMP" ]; then
  say "test guest is up to date: $OUT/guest.raw"
  exit 0
fi

START=$(date +%s)
mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
say "building the test guest (kernel $KVER) in $OUT"

# ---- initramfs: busybox, the modules in dependency order, /init ----
# Modules wanted; modprobe --show-depends expands each into its dependencies in load order.
MODULES=(virtio_pci virtio_blk virtio_scsi virtio_rng virtio_console
  crc32c_generic ext4 vfat nls_cp437 nls_ascii nls_iso8859-1 nls_utf8 isofs
  ata_piix ahci sr_mod sd_mod evdev button pvpanic-mmio)
I="$WORK/initramfs"
mkdir -p "$I/bin" "$I/lib/modules" "$I/proc" "$I/sys" "$I/dev" "$I/newroot"
cp /bin/busybox "$I/bin/busybox"
for a in sh mount umount mkdir insmod findfs sleep cat switch_root setsid cttyhack poweroff; do
  ln -s busybox "$I/bin/$a"
done
cp "$GUEST_SRC/init" "$I/init"
chmod 0755 "$I/init"
: >"$I/lib/modules/load.list"
for m in "${MODULES[@]}"; do
  modprobe -S "$KVER" -d / --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" { print $2 }' || true
done | awk '!seen[$0]++' | while read -r ko; do
  base=$(basename "$ko")
  case "$base" in
    *.ko) cp "$ko" "$I/lib/modules/$base" ;;
    *.ko.xz) xz -dc "$ko" >"$I/lib/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$ko" >"$I/lib/modules/${base%.zst}"; base=${base%.zst} ;;
    *) continue ;;
  esac
  echo "$base" >>"$I/lib/modules/load.list"
done
[ -s "$I/lib/modules/load.list" ] || die "no kernel modules found in $MODDIR"
grep -q '^ext4.ko$' "$I/lib/modules/load.list" || die "ext4 module missing from $MODDIR"
find "$I" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$I" && find . | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet -R 0:0) | gzip -9 -n >"$WORK/initrd.img"

# ---- root filesystem (ext4 partition, label lfroot) ----
R="$WORK/rootfs"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/labforge,etc/acpi/PWRF,proc,sys,dev,run,tmp,root,home,mnt,var/lib/labforge,var/log}
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
cp /bin/busybox "$R/bin/busybox"
busybox --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$R/$(dirname "$applet")"
  ln -sf /bin/busybox "$R/$applet"
done
cp "$GUEST_SRC/inittab" "$R/etc/inittab"
install -m 0755 "$GUEST_SRC/rc.sh" "$R/etc/labforge/rc.sh"
install -m 0755 "$GUEST_SRC/late.sh" "$R/etc/labforge/late.sh"
install -m 0755 "$GUEST_SRC/shutdown.sh" "$R/etc/labforge/shutdown.sh"
install -m 0644 "$GUEST_SRC/cloud-config.awk" "$R/etc/labforge/cloud-config.awk"
install -m 0755 "$GUEST_SRC/acpi-power" "$R/etc/acpi/PWRF/00000080"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:*:19675:0:99999:7:::\n' >"$R/etc/shadow"
chmod 0600 "$R/etc/shadow"
printf 'root:x:0:\n' >"$R/etc/group"
printf '/bin/sh\n' >"$R/etc/shells"
printf 'labforge-guest\n' >"$R/etc/hostname"
printf 'labforge test guest (busybox, built by scripts/build-test-guest.sh)\n' >"$R/etc/motd"
printf '%s\n' "$KVER" >"$R/etc/labforge/kernel"
find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# ---- boot partition (FAT16, label LFBOOT): syslinux for BIOS, systemd-boot for UEFI ----
B="$WORK/boot.img"
mkfs.vfat -F 16 -n LFBOOT -i "$FAT_ID" -C "$B" $((BOOT_MIB * 1024)) >/dev/null
cp "/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
cp "$GUEST_SRC/syslinux.cfg" "$WORK/syslinux.cfg"
for f in vmlinuz initrd.img syslinux.cfg; do touch -d "@$SOURCE_DATE_EPOCH" "$WORK/$f"; done
export MTOOLS_SKIP_CHECK=1
mcopy -m -i "$B" "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/syslinux.cfg" ::/
SDBOOT=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
if [ -f "$SDBOOT" ]; then
  mmd -i "$B" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
  cp "$SDBOOT" "$WORK/BOOTX64.EFI"
  touch -d "@$SOURCE_DATE_EPOCH" "$WORK/BOOTX64.EFI"
  mcopy -m -i "$B" "$WORK/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -m -i "$B" "$GUEST_SRC/loader/loader.conf" ::/loader/loader.conf
  mcopy -m -i "$B" "$GUEST_SRC/loader/entries/labforge.conf" ::/loader/entries/labforge.conf
fi
syslinux --install --directory /syslinux "$B" 2>/dev/null || {
  mmd -i "$B" ::/syslinux
  syslinux --install --directory /syslinux "$B"
}

# ---- the disk: MBR (syslinux mbr.bin), p1 = boot (type ef, active), p2 = root ----
D="$WORK/guest.raw"
truncate -s "${DISK_MIB}M" "$D"
sfdisk -q "$D" <<SFDISK
label: dos
label-id: $DISK_ID
start=2048, size=$((BOOT_MIB * 2048)), type=ef, bootable
start=$((2048 + BOOT_MIB * 2048)), type=83
SFDISK
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$D" bs=440 count=1 conv=notrunc status=none
dd if="$B" of="$D" bs=1M seek=1 conv=notrunc,sparse status=none
ROOT_OFF=$(((1 + BOOT_MIB) * 1024 * 1024))
ROOT_MIB=$((DISK_MIB - 1 - BOOT_MIB))
mkfs.ext4 -q -F -L lfroot -U "$ROOT_UUID" -E "hash_seed=$ROOT_UUID,offset=$ROOT_OFF,root_owner=0:0" \
  -J size=4 -N 4096 -m 0 -d "$R" "$D" "${ROOT_MIB}M"

mv -f "$D" "$OUT/guest.raw"
# The same kernel and initramfs, booted alone by labforge's acceleration probe (kernel argument labforge.probe).
cp "$WORK/vmlinuz" "$OUT/probe-vmlinuz.tmp"
cp "$WORK/initrd.img" "$OUT/probe-initrd.img.tmp"
mv -f "$OUT/probe-vmlinuz.tmp" "$OUT/probe-vmlinuz"
mv -f "$OUT/probe-initrd.img.tmp" "$OUT/probe-initrd.img"
{
  echo "kernel=$KVER"
  echo "virtual_size_bytes=$((DISK_MIB * 1024 * 1024))"
  echo "root_label=lfroot"
  echo "root_offset_bytes=$ROOT_OFF"
  echo "allocated_kib=$(du -k "$OUT/guest.raw" | cut -f1)"
  echo "sha256=$(sha256sum "$OUT/guest.raw" | cut -d' ' -f1)"
  echo "boot=bios:syslinux$([ -f "$SDBOOT" ] && echo ',uefi:systemd-boot')"
  pkgver "linux-image-$KVER" busybox-static syslinux systemd-boot-efi
} >"$OUT/guest.info"
echo "$STAMP" >"$OUT/stamp"
say "built $OUT/guest.raw in $(($(date +%s) - START)) s ($(du -h "$OUT/guest.raw" | cut -f1) allocated of ${DISK_MIB} MiB)"
