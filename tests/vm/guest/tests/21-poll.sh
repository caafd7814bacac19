#!/bin/sh
# poll() on a consumer fd: a reader blocked in poll wakes up when a sub-buffer
# is produced (loadgen at 2000 records/s per CPU, 10 wakeups per CPU),
# reports POLLIN while data is pending, and times out when nothing is
# written and everything is consumed.
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=pl subbuf_size=16384 n_subbufs=8
lg_load channel=pl
rmck_poll -n pl --rate 2000 --wakeups 10 || fail "rmck_poll"
rm_unload
echo "ok: poll wakes on data and times out when idle"
