#!/bin/sh
# relaymap.ko loads with its default channel: /dev/relaymap is a misc
# character device, mode 0600 root:root by default; the legacy debugfs view
# has the per-CPU relay files (0400) and the control file (0600); both go
# away with rmmod.
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

[ -e /dev/relaymap ] && fail "/dev/relaymap exists before insmod"
rm_load
[ -c /dev/relaymap ] || fail "/dev/relaymap is not a character device after insmod"
assert_eq "$(file_mode /dev/relaymap)" 0600 "mode of /dev/relaymap (default)"
assert_eq "$(stat -c '%u:%g' /dev/relaymap)" 0:0 "owner of /dev/relaymap (default)"
# A misc device: major 10 (stat prints it in hex).
assert_eq "$(stat -c '%t' /dev/relaymap)" a "major of /dev/relaymap (misc = 10)"
d=$(rm_dir demo)
[ -d "$d" ] || fail "$d does not exist after insmod (debugfs is mounted: the default view is debugfs)"
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
[ -e /dev/relaymap ] && fail "/dev/relaymap still exists after rmmod"
echo "ok: /dev/relaymap (0600 root:root) and debugfs demo/{cpu0,cpu1,control} came and went with the module"
exit 0
