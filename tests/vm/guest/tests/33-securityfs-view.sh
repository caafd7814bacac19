#!/bin/sh
# view=securityfs: relaymap puts relay's per-buffer placeholder files in
# securityfs (/sys/kernel/security/relaymap/<name>/cpuN, 0400, opening one
# is refused) and nothing in debugfs; /dev/relaymap works end to end (GET_INFO,
# a lossless run of 20000 records per CPU with every record verified). The
# placeholders go with rmmod. view=none is refused at load with a clear
# message (relay needs a file per buffer).
# timeout: 200
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

sec=/sys/kernel/security
if ! grep -q " $sec securityfs " /proc/mounts; then
	mount -t securityfs securityfs "$sec" || skip "cannot mount securityfs on $sec"
	trap 'umount "$sec" 2>/dev/null' EXIT
fi

rm_load name=sv subbuf_size=16384 n_subbufs=8 view=securityfs
d=$sec/relaymap/sv
[ -d "$d" ] || fail "$d does not exist with view=securityfs"
[ -e "$RM_DEBUGFS" ] && fail "$RM_DEBUGFS exists with view=securityfs (no debugfs view expected)"
for c in $(seq 0 $(($(grep -c '^processor' /proc/cpuinfo) - 1))); do
	[ -e "$d/cpu$c" ] || fail "$d/cpu$c missing"
	assert_eq "$(file_mode "$d/cpu$c")" 0400 "mode of $d/cpu$c"
	if cat "$d/cpu$c" >/dev/null 2>&1; then
		fail "$d/cpu$c could be opened and read (a placeholder must refuse)"
	fi
done
echo "placeholders:" "$d"/*
[ -c /dev/relaymap ] || fail "/dev/relaymap missing with view=securityfs"
rmck_info -n sv --subbuf-size 16384 --n-subbufs 8 || fail "rmck_info with view=securityfs"
lg_load channel=sv
rmck_consume -n sv --mode lossless --count 20000 --min-subbufs 100 ||
	fail "lossless run through /dev/relaymap with view=securityfs"
rm_unload
[ -e "$d" ] && fail "$d still exists after rmmod"
[ -e "$sec/relaymap" ] && fail "$sec/relaymap still exists after rmmod"
echo "ok: view=securityfs: placeholders in securityfs, nothing in debugfs, /dev/relaymap lossless"

# No view at all is not offered (relay needs a file per buffer): refused
# at load with a message that names the valid choices.
if insmod "$RM_KO" name=vn view=none 2>/dev/null; then
	rm_unload
	fail "relaymap loaded with view=none"
fi
dmesg | grep -q 'view=none invalid' || fail "no clear message for view=none in the kernel log"
grep -q '^relaymap ' /proc/modules && fail "relaymap loaded after view=none"
echo "ok: view=none refused with a message"
