#!/bin/sh
# Unloading under a consumer: an open /dev/relaymap, channel fd or consumer
# fd, and a mapped consumer fd (even after close) each keep relaymap
# loaded: rmmod says "in use" and nothing breaks; the mappings stay
# readable with the unconsumed data intact, a poll() blocked across the
# refused rmmod wakes with POLLIN on new data; once everything is unmapped
# and closed, rmmod works. busybox rmmod is refused with /dev/relaymap
# open, and with a file of the legacy debugfs view open (cpu0, control).
# rmmod while the load generator writes; loading the module again works.
# The harness checks dmesg.
# timeout: 150
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

failed=""
rm_load name=ul subbuf_size=16384 n_subbufs=8
lg_load channel=ul
rmck_rmmod -n ul || failed="$failed; rmck_rmmod (unload under a mapped consumer)"
# rmck_rmmod unloads both modules itself unless it died before.
grep -q '^relaymap' /proc/modules && rm_unload

# busybox rmmod with /dev/relaymap open: refused, then works.
rm_load name=ul subbuf_size=16384 n_subbufs=8
exec 3<>/dev/relaymap || fail "open /dev/relaymap"
if rmmod relaymap 2>/dev/null; then
	fail "rmmod relaymap succeeded with /dev/relaymap open"
fi
grep -q '^relaymap ' /proc/modules || fail "relaymap gone after a refused rmmod"
[ -c /dev/relaymap ] || fail "/dev/relaymap gone after a refused rmmod"
exec 3>&-
rmck_info -n ul --subbuf-size 16384 --n-subbufs 8 || fail "channel broken after a refused rmmod"
rm_unload
grep -q '^relaymap' /proc/modules && fail "relaymap still loaded"
echo "ok: busybox rmmod refused while /dev/relaymap is open, unload after close"

# The legacy debugfs view: a cpu file open (not mapped), then the control file.
for f in cpu0 control; do
	rm_load name=ul subbuf_size=16384 n_subbufs=8
	exec 3<"$(rm_dir ul)/$f" || fail "open debugfs $f"
	if rmmod relaymap 2>/dev/null; then
		fail "rmmod relaymap succeeded with the debugfs $f file open"
	fi
	grep -q '^relaymap ' /proc/modules || fail "relaymap gone after a refused rmmod"
	[ -e "$(rm_dir ul)/$f" ] || fail "debugfs $f gone after a refused rmmod"
	exec 3<&-
	rm_unload
	grep -q '^relaymap' /proc/modules && fail "relaymap still loaded"
	echo "ok: busybox rmmod refused while the debugfs $f file is open, unload after close"
done

# Unload while the load generator writes at full speed (drop mode, nobody
# reads): rmmod relaymap_loadgen stops the writers, then relaymap goes.
rm_load name=ul3 subbuf_size=16384 n_subbufs=4
lg_load channel=ul3 mode=drop
lg_start
i=0
until [ "$(lg_stat dropped total)" -gt 0 ]; do
	i=$((i + 1))
	[ "$i" -gt 300 ] && { lg_status; fail "the load generator dropped nothing in 30 s into a 64 KiB ring nobody reads"; }
	sleep 0.1
done
lg_status
rm_unload
grep -q '^relaymap' /proc/modules && fail "relaymap still loaded after rmmod under load"
echo "ok: rmmod of both modules while the load generator writes (and drops)"

# And once more from scratch: load, use, unload.
rm_load name=ul2 subbuf_size=16384 n_subbufs=8
lg_load channel=ul2
rmck_consume -n ul2 --mode lossless --count 5000 || fail "channel after reload"
rm_unload
echo "ok: reload after the unload works"
[ -z "$failed" ] || fail "${failed#; }"
echo "ok: unload is refused while a consumer has /dev/relaymap, a channel or consumer fd open or mapped, works after, reload works"
