#!/bin/sh
# Unloading under a consumer: an open control file, an open CPU file and a
# mapped CPU file (even after close) each keep relaymap loaded: rmmod says
# "in use" and nothing breaks; the mappings stay readable with the
# unconsumed data intact, a poll() blocked across the refused rmmod wakes
# with POLLIN on new data; once everything is unmapped and closed, rmmod
# works. rmmod while the load generator writes; loading the module again
# works. The harness checks dmesg.
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

failed=""
rm_load name=ul subbuf_size=16384 n_subbufs=8
lg_load channel=ul
rmck_rmmod -n ul || failed="$failed; rmck_rmmod (unload under a mapped consumer)"
# rmck_rmmod unloads both modules itself unless it died before.
grep -q '^relaymap' /proc/modules && rm_unload

# busybox rmmod with a CPU file open (not mapped): refused, then works.
rm_load name=ul subbuf_size=16384 n_subbufs=8
exec 3<"$(rm_dir ul)/cpu0" || fail "open cpu0"
if rmmod relaymap 2>/dev/null; then
	fail "rmmod relaymap succeeded with a CPU file open"
fi
grep -q '^relaymap ' /proc/modules || fail "relaymap gone after a refused rmmod"
[ -e "$(rm_dir ul)/cpu0" ] || fail "cpu0 gone after a refused rmmod"
exec 3<&-
rm_unload
grep -q '^relaymap' /proc/modules && fail "relaymap still loaded"
echo "ok: busybox rmmod refused while a CPU file is open, unload after close"

# busybox rmmod with the control file open: refused, module still there.
rm_load name=ul subbuf_size=16384 n_subbufs=8
exec 3<>"$(rm_dir ul)/control" || fail "open control"
if rmmod relaymap 2>/dev/null; then
	fail "rmmod relaymap succeeded with the control file open"
fi
grep -q '^relaymap ' /proc/modules || fail "relaymap gone after a refused rmmod"
exec 3>&-
rmck_info -n ul --subbuf-size 16384 --n-subbufs 8 || fail "channel broken after a refused rmmod"
rm_unload
grep -q '^relaymap' /proc/modules && fail "relaymap still loaded"
echo "ok: busybox rmmod refused while the control file is open, channel intact, unload after close"

# Unload while the load generator writes at full speed (drop mode, nobody
# reads): rmmod relaymap_loadgen stops the writers, then relaymap goes.
rm_load name=ul3 subbuf_size=16384 n_subbufs=4
lg_load channel=ul3 mode=drop
lg_start
sleep 0.5
lg_status
rm_unload
grep -q '^relaymap' /proc/modules && fail "relaymap still loaded after rmmod under load"
echo "ok: rmmod of both modules while the load generator writes"

# And once more from scratch: load, use, unload.
rm_load name=ul2 subbuf_size=16384 n_subbufs=8
lg_load channel=ul2
rmck_consume -n ul2 --mode lossless --count 5000 || fail "channel after reload"
rm_unload
echo "ok: reload after the unload works"
[ -z "$failed" ] || fail "${failed#; }"
echo "ok: unload is refused while a consumer has files open or mapped, works after, reload works"
