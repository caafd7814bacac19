#!/bin/sh
# The creator destroys a channel while a consumer holds it (issue 9 item 1):
# the load generator creates channel "dz" (create=dz) and writes 5000
# records per CPU into it; a consumer that holds every CPU and has handed
# back part of the data keeps its fds while `rmmod relaymap_loadgen`
# destroys the channel. Its blocked poll() wakes (the destroy publishes
# the open sub-buffer), the name is gone from LIST and OPEN_CHANNEL
# (ENOENT), GET_INFO/GET_CURSOR say DESTROYED, and every record written
# before the destroy is delivered after it, in order (poll: POLLIN while
# data is left, POLLHUP once drained). The name cannot be created again
# while the old channel is held, and can once the consumer closed.
# timeout: 200
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load
lg_load create=dz create_subbuf_size=16384 create_n_subbufs=32 channel=dz
rmck_destroy -n dz --lg-ko "$LG_KO" --count 5000 || fail "rmck_destroy"
# The re-create while the old channel was held failed for that reason (EBUSY).
dmesg | grep -q 'relaymap_loadgen: create=dz: cannot create the channel: -16' ||
	fail "the re-create of dz while it was held did not fail with EBUSY (-16) in the kernel log"
rm_unload
echo "ok: destroyed under a consumer: everything written before the destroy delivered after it, then POLLHUP"
