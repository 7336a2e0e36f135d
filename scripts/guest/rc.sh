#!/bin/sh
# labforge test guest, stage 2: busybox init's sysinit action.
# Mounts the pseudo filesystems, counts the boot, applies a NoCloud seed (a disk
# labelled cidata) and runs a command disk (labelled lfcmd), then prints
#   LABFORGE-GUEST hostname=<h> instance-id=<i> boot=<n>
# on the console. Everything it applies lives on the root filesystem, which is the
# ext4 partition of the guest's own disk, so it persists. See docs/TEST-GUEST.md.
PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PATH
umask 022

mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
grep -q " /dev " /proc/mounts || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -o remount,rw,noatime / 2>/dev/null
mkdir -p /run/labforge /var/lib/labforge
hostname labforge-guest

# The ACPI power button (evdev + button were loaded by the initramfs).
acpid -c /etc/acpi 2>/dev/null

STATE=/var/lib/labforge
log() { echo "labforge: $*"; }

boot=$(cat "$STATE/boot-count" 2>/dev/null)
case "$boot" in '' | *[!0-9]*) boot=0 ;; esac
boot=$((boot + 1))
echo "$boot" >"$STATE/boot-count"

host=$(cat "$STATE/hostname" 2>/dev/null)
[ -n "$host" ] || host=labforge-guest
iid=$(cat "$STATE/instance-id" 2>/dev/null)
[ -n "$iid" ] || iid=none

# Finds a block device by filesystem label, in either case (vfat labels are upper case).
find_label() {
  findfs "LABEL=$1" 2>/dev/null && return 0
  findfs "LABEL=$(echo "$1" | tr '[:lower:]' '[:upper:]')" 2>/dev/null && return 0
  return 1
}
mount_ro() { # dev dir
  mkdir -p "$2"
  mount -o ro -t vfat "$1" "$2" 2>/dev/null || mount -o ro -t iso9660 "$1" "$2" 2>/dev/null ||
    mount -o ro "$1" "$2" 2>/dev/null || { log "cannot mount $1"; return 1; }
}
# Reads "key: value" from a flat YAML file (meta-data).
meta() { # file key
  sed -n "s/^$2:[[:space:]]*//p" "$1" | head -n 1 | sed -e 's/[[:space:]]*$//' -e "s/^[\"']//" -e "s/[\"']\$//"
}

# ---- the functions the cloud-config reader's output calls ----
lf_hostname() { new_host=$1; }
lf_user() { # name passwd-hash plain-passwd lock(1/0) shell gecos
  name=$1 hash=$2 plain=$3 lock=$4 shell=$5 gecos=$6
  case "$name" in '' | *[!A-Za-z0-9._-]*) log "skipping user with a bad name: $name"; return ;; esac
  if [ -z "$hash" ] && [ -n "$plain" ]; then hash=$(mkpasswd -m sha512 "$plain"); fi
  [ -n "$hash" ] || hash='*'
  [ "$lock" = 1 ] && hash="!$hash"
  if grep -q "^$name:" /etc/passwd; then
    log "user $name exists: updating its password"
  else
    uid=1000
    while cut -d: -f3 /etc/passwd | grep -qx "$uid"; do uid=$((uid + 1)); done
    echo "$name:x:$uid:$uid:$gecos:/home/$name:$shell" >>/etc/passwd
    echo "$name:x:$uid:" >>/etc/group
    mkdir -p "/home/$name"
    chown "$uid:$uid" "/home/$name"
    chmod 0750 "/home/$name"
    log "created user $name (uid $uid)"
  fi
  grep -v "^$name:" /etc/shadow >/etc/shadow.new
  echo "$name:$hash:$(($(date +%s) / 86400)):0:99999:7:::" >>/etc/shadow.new
  chmod 0600 /etc/shadow.new
  mv /etc/shadow.new /etc/shadow
}
lf_ssh_key() { # name key
  home=$(grep "^$1:" /etc/passwd | cut -d: -f6)
  [ -n "$home" ] || return
  mkdir -p "$home/.ssh"
  echo "$2" >>"$home/.ssh/authorized_keys"
  chmod 0700 "$home/.ssh"
  chmod 0600 "$home/.ssh/authorized_keys"
  chown -R "$(grep "^$1:" /etc/passwd | cut -d: -f3-4)" "$home/.ssh"
}
lf_write_file() { # path content encoding permissions owner append(1/0)
  path=$1 enc=$3 perms=${4:-0644} owner=${5:-root:root}
  case "$path" in /*) ;; *) log "write_files: path must be absolute: $path"; return ;; esac
  mkdir -p "$(dirname "$path")"
  [ "$6" = 1 ] || : >"$path"
  case "$enc" in
    b64 | base64) printf '%s' "$2" | base64 -d >>"$path" ;;
    gz+b64 | gzip+base64 | gz+base64 | gzip+b64) printf '%s' "$2" | base64 -d | gunzip >>"$path" ;;
    *) printf '%s' "$2" >>"$path" ;;
  esac
  chmod "$perms" "$path"
  chown "$owner" "$path" 2>/dev/null
  log "wrote $path"
}
lf_runcmd() { printf '%s\n' "$1" >>"$STATE/instance/runcmd.sh"; }
lf_power_state() { power=$1; }

# ---- NoCloud seed ----
seed_dev=$(find_label cidata)
if [ -n "$seed_dev" ] && mount_ro "$seed_dev" /run/labforge/seed; then
  S=/run/labforge/seed
  log "NoCloud seed on $seed_dev"
  new_iid=$(meta "$S/meta-data" instance-id)
  new_host=$(meta "$S/meta-data" local-hostname)
  [ -n "$new_host" ] || new_host=$(meta "$S/meta-data" hostname)
  [ -n "$new_iid" ] || new_iid=nocloud
  power=""
  if [ "$new_iid" != "$(cat "$STATE/instance-id" 2>/dev/null)" ]; then
    # A new instance: apply user-data once (cloud-init's once-per-instance).
    rm -rf "$STATE/instance"
    mkdir -p "$STATE/instance"
    cp "$S/meta-data" "$STATE/instance/meta-data" 2>/dev/null
    if [ -f "$S/user-data" ]; then
      cp "$S/user-data" "$STATE/instance/user-data"
      case "$(head -n 1 "$S/user-data")" in
        '#cloud-config'*)
          awk -f /etc/labforge/cloud-config.awk "$S/user-data" >"$STATE/instance/apply.sh"
          : >"$STATE/instance/runcmd.sh"
          # shellcheck disable=SC1091 # generated just above
          . "$STATE/instance/apply.sh"
          ;;
        '#!'*)
          cp "$S/user-data" "$STATE/instance/runcmd.sh"
          ;;
        *) log "user-data is neither #cloud-config nor a script: ignored" ;;
      esac
    fi
    echo "$new_iid" >"$STATE/instance-id"
    iid=$new_iid
    [ -n "$new_host" ] && hostname "$new_host"
    if [ -s "$STATE/instance/runcmd.sh" ]; then
      log "running runcmd"
      sh "$STATE/instance/runcmd.sh"
      log "runcmd exit=$?"
    fi
    [ -n "$power" ] && echo "$power" >/run/labforge/power
  fi
  if [ -n "$new_host" ]; then
    echo "$new_host" >"$STATE/hostname"
    host=$new_host
  fi
  umount /run/labforge/seed
fi

hostname "$host"
echo "$host" >/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$host" >/etc/hosts

# ---- command disk ----
cmd_dev=$(find_label lfcmd)
if [ -n "$cmd_dev" ] && mount_ro "$cmd_dev" /run/labforge/cmd; then
  C=/run/labforge/cmd
  if [ -f "$C/run.sh" ]; then
    log "running run.sh from the command disk $cmd_dev"
    (cd "$C" && LABFORGE_CMD_DIR=$C LABFORGE_BOOT=$boot sh ./run.sh)
    echo "LABFORGE-CMD exit=$?"
  fi
  [ -f "$C/poweroff" ] && echo poweroff >/run/labforge/power
  umount "$C"
fi

sync
echo "LABFORGE-GUEST hostname=$host instance-id=$iid boot=$boot"
