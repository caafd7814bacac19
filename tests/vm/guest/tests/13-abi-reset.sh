#!/bin/sh
# RESET: EBUSY while the load generator runs (with and without consumer
# fds) and while any consumer fd is open (writers stopped), stream
# undisturbed; with only channel fds open it empties every buffer (cursors
# and counters 0, resets counted, a new uuid, poll idle) and the next data
# starts at sub-buffer seq 0 with the new uuid, complete.
# timeout: 180
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=rst subbuf_size=16384 n_subbufs=8
lg_load channel=rst
rmck_reset -n rst || fail "rmck_reset"
rm_unload
echo "ok: RESET refused while writing, complete when stopped"
