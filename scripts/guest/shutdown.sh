#!/bin/sh
# Run by busybox init before it powers off or reboots: leave the disk clean.
echo "LABFORGE-GUEST-SHUTDOWN hostname=$(hostname)"
killall acpid 2>/dev/null
sync
umount -a -r 2>/dev/null
mount -o remount,ro / 2>/dev/null
sync
