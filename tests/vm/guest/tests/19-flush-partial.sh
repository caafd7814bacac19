#!/bin/sh
# FLUSH while writers run at 1000 records/s per CPU: every FLUSH(cpu) that
# finds data publishes exactly one more sub-buffer before returning, its
# header has RELAYMAP_SB_FLUSHED, events in it and room left for another
# record (content_size in bits); the stream stays complete; an idle FLUSH
# produces nothing.
# timeout: 200
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=fp subbuf_size=16384 n_subbufs=8
lg_load channel=fp
rmck_flush -n fp --rate 1000 --iterations 150 --interval-ms 20 || fail "rmck_flush at 1000 records/s"
rm_unload
echo "ok: FLUSH makes partial sub-buffers visible"
