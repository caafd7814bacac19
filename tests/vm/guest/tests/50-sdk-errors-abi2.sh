#!/bin/sh
# SDK: the ABI 2 error variants name the real cause.
#  - before insmod (no /dev/relaymap): Channel::open, list_channels and
#    device_abi_version give ModuleNotLoaded;
#  - a name that is not a channel: NoSuchChannel with the list;
#  - debugfs unmounted: a debugfs path gives DebugfsNotMounted, while
#    Channel::open(name) works end to end, twice: with counts known in
#    advance (checked against the kernel's stats), and after a RESET with
#    the load generator driven and counted through its module parameters.
# debugfs is mounted back at the end, also on failure.
# timeout: 180
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
dbg=/sys/kernel/debug
dbg_mounted() { awk -v d="$dbg" '$2 == d && $3 == "debugfs" { f = 1 } END { exit !f }' /proc/mounts; }
remount() { dbg_mounted || mount -t debugfs debugfs "$dbg" || echo "FAIL: cannot mount debugfs back on $dbg"; }
trap remount EXIT
trap 'remount; exit 143' TERM INT

echo "--- no module"
grep -q '^relaymap ' /proc/modules && fail "relaymap is loaded before the test"
[ -e /dev/relaymap ] && fail "/dev/relaymap exists without the module"
relaymap-vmtest expect-error module-not-loaded --channel demo || fail "module not loaded"

echo "--- no such channel"
rm_load subbuf_size=65536 n_subbufs=4
[ -c /dev/relaymap ] || fail "/dev/relaymap is not a character device after insmod"
# The load generator creates a second channel, so the list has two names;
# it starts writing into "demo" at once (lossless: it waits for a consumer).
n=20000
lg_load create=second count=$n record_size=64 mode=lossless rate=0 autostart=1
relaymap-vmtest expect-error no-such-channel --channel nosuch demo second ||
	{ rm_unload; fail "no such channel"; }

echo "--- debugfs unmounted"
dbg_mounted || fail "debugfs is not mounted at $dbg to begin with"
# Mounts below it first (tracefs is automounted at $dbg/tracing).
# shellcheck disable=SC2013 # mount points have no spaces here
for m in $(awk -v d="$dbg/" 'index($2, d) == 1 { print $2 }' /proc/mounts); do
	umount "$m" || fail "cannot unmount $m"
done
umount "$dbg" || fail "cannot unmount debugfs"
dbg_mounted && fail "debugfs still mounted after umount"
relaymap-vmtest expect-error debugfs-not-mounted --channel demo ||
	{ remount; rm_unload; fail "debugfs not mounted"; }
# 1: counts known in advance (autostart=1, no status read at all), checked
#    against the kernel's per-CPU stats.
relaymap-vmtest lossless --channel demo --expect-count $n --timeout-s 120 ||
	{ remount; rm_unload; fail "lossless (--expect-count) through /dev/relaymap without debugfs"; }
# 2: the channel RESET first (Channel::reset), the load generator started
#    and counted through its module parameters.
relaymap-vmtest lossless --channel demo --reset --timeout-s 120 ||
	{ remount; rm_unload; fail "lossless through /dev/relaymap without debugfs"; }
lg_status
for c in $(lg_status | awk '$1 == "cpu" { print $2 }'); do
	assert_eq "$(lg_stat written cpu "$c")" "$n" "cpu $c: load generator written"
	assert_eq "$(lg_stat dropped cpu "$c")" 0 "cpu $c: load generator dropped"
done
remount
dbg_mounted || fail "debugfs did not come back"
rm_unload
