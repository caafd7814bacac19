#!/bin/sh
# Harness sanity: the VM looks like tests/vm/README.md promises.
# timeout: 60
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

grep -q ' /sys/kernel/debug debugfs ' /proc/mounts || fail "debugfs is not mounted at /sys/kernel/debug"
grep -q ' /tmp tmpfs ' /proc/mounts || fail "/tmp is not a tmpfs"
online=$(cat /sys/devices/system/cpu/online)
assert_eq "$online" "0-1" "online CPUs (-smp 2)"
case ":$PATH:" in *:/relaymap/bin:*) ;; *) fail "/relaymap/bin is not on PATH ($PATH)" ;; esac
grep -q '^relaymap' /proc/modules && fail "a relaymap module is loaded at test start"
echo "kernel $(uname -r), CPUs online $online, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
ls /relaymap/kmod/ /relaymap/bin/
