#!/bin/sh
# boot: debugfs=off
# Hardened systems boot with debugfs=off. relaymap then creates relay's
# placeholder files in securityfs instead (relaymap/<name>/cpuN, never
# opened by consumers), and every consumer works through /dev/relaymap:
# `relaymap list`, the SDK (lossless by name), the C consumer and
# relaymap-dump (dump verified, 0 lost). The load generator is driven
# through its sysfs parameters.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

grep -q debugfs=off /proc/cmdline || fail "this boot has no debugfs=off"
if grep -q ' debugfs ' /proc/mounts; then fail "debugfs is mounted"; fi
if mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null; then
	umount /sys/kernel/debug
	fail "debugfs could be mounted despite debugfs=off"
fi
echo "ok: no debugfs in this boot"

CH=nodbg
rm_load name=$CH subbuf_size=65536 n_subbufs=8
lg_load channel=$CH record_size=72 mode=lossless count=50000
[ -c /dev/relaymap ] || fail "/dev/relaymap missing"
SEC=/sys/kernel/security
grep -q " $SEC securityfs " /proc/mounts || mount -t securityfs securityfs $SEC ||
	fail "cannot mount securityfs"
ls -l "$SEC/relaymap/$CH/" || fail "no placeholder folder $SEC/relaymap/$CH"
[ -e "$SEC/relaymap/$CH/cpu0" ] || fail "no placeholder $SEC/relaymap/$CH/cpu0"
echo "ok: placeholders in securityfs"

relaymap list >/tmp/list || fail "relaymap list"
cat /tmp/list
grep -q "$CH" /tmp/list || fail "relaymap list does not show $CH"

echo "--- SDK by name"
lg_start
relaymap-vmtest lossless --channel $CH --expect-from-loadgen --timeout-s 150 ||
	fail "SDK: lossless by name without debugfs"
lg_wait_idle 60

echo "--- C consumer by name"
lossless_consumer_run relaymap-consumer $CH

echo "--- relaymap-dump by name, then verify"
lossless_dump_run $CH /tmp/out
echo "ok: debugfs=off: placeholders in securityfs; SDK, C and relaymap-dump consume by name"
