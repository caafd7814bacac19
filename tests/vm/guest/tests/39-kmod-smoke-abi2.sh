#!/bin/sh
# The kmod engineer's smoke test of ABI 2 (rmck_abi2smoke): /dev/relaymap,
# channel and consumer fds, exclusive consumers, versioning, headers and
# records, counters, RESET, both placements of relay's files (debugfs,
# securityfs), destroy under a consumer, device access,
# and the load generator's sysfs control (run/status parameters).
# timeout: 280
. /relaymap/lib.sh

command -v rmck_abi2smoke >/dev/null || fail "rmck_abi2smoke not built"
LG=/sys/module/relaymap_loadgen/parameters

# One view: relaymap.ko with channel "smoke", the load generator on it.
basic() {
	view=$1
	echo "--- view=$view"
	rm_load name=smoke subbuf_size=16384 n_subbufs=8 view="$view"
	dmesg | grep -q "buffer files in $view" || { dmesg | tail -n 5; fail "relaymap did not report view $view"; }
	[ -c /dev/relaymap ] || fail "/dev/relaymap missing"
	insmod "$LG_KO" channel=smoke || fail "insmod relaymap_loadgen"
	rmck_abi2smoke basic "$view" || fail "rmck_abi2smoke basic $view"
	# The sysfs status matches the debugfs one where debugfs exists.
	if [ "$view" = debugfs ]; then
		assert_eq "$(cat "$LG/status")" "$(cat "$LG_DEBUGFS/status")" "loadgen status: sysfs vs debugfs"
	fi
	rm_unload
}

mount | grep -q ' /sys/kernel/security ' || mount -t securityfs securityfs /sys/kernel/security ||
	fail "cannot mount securityfs"
basic debugfs
basic securityfs

echo "--- destroy under a consumer"
rm_load name=
insmod "$LG_KO" create=lgown channel=lgown || fail "insmod relaymap_loadgen create=lgown"
rmck_abi2smoke destroy || fail "rmck_abi2smoke destroy"
rm_unload

echo "--- access"
rm_load name=smoke
rmck_abi2smoke access -1 0600 || fail "default access"
rm_unload
rm_load name=smoke mode=0604
rmck_abi2smoke access -1 0604 || fail "mode=0604"
rm_unload
rm_load name=smoke group=1234
rmck_abi2smoke access 1234 0666 || fail "group=1234"
rm_unload
insmod "$RM_KO" mode=0800 2>/dev/null && fail "mode=0800 accepted"
insmod "$RM_KO" view=none 2>/dev/null && fail "view=none accepted"
insmod "$RM_KO" subbuf_size=6144 2>/dev/null && fail "subbuf_size=6144 (not a page multiple) accepted"
grep -q '^relaymap ' /proc/modules && fail "relaymap loaded after bad parameters"
dmesg | grep -q "not a multiple of the page size\|must be a multiple of the page size" ||
	fail "no clear message for subbuf_size=6144"

echo "ok: ABI 2 smoke: device, fds, ownership, versioning, layout, counters, views, destroy, access"
exit 0
