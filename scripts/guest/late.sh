#!/bin/sh
# Run once by busybox init after rc.sh: honours a power_state request
# (cloud-config power_state, or /run/labforge/power written by a command disk).
req=/run/labforge/power
[ -f "$req" ] || exit 0
mode=$(cat "$req")
echo "LABFORGE-GUEST-POWER mode=$mode"
case "$mode" in
  reboot) reboot ;;
  halt) halt ;;
  *) poweroff ;;
esac
