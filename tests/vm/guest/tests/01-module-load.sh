#!/bin/sh
# relaymap.ko loads with its default channel, creates the per-CPU relay
# files and the control file with the documented modes, and unloads.
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load
d=$(rm_dir demo)
[ -d "$d" ] || fail "$d does not exist after insmod"
for f in cpu0 cpu1; do
	[ -e "$d/$f" ] || fail "$d/$f missing"
	assert_eq "$(file_mode "$d/$f")" 0400 "mode of $d/$f"
done
[ -e "$d/cpu2" ] && fail "$d/cpu2 exists with 2 CPUs"
[ -e "$d/control" ] || fail "$d/control missing"
assert_eq "$(file_mode "$d/control")" 0600 "mode of $d/control"
rm_unload
grep -q '^relaymap ' /proc/modules && fail "relaymap still loaded after rmmod"
[ -e "$d" ] && fail "$d still exists after rmmod"
echo "ok: channel demo had cpu0, cpu1 and control and went away with rmmod"
exit 0
