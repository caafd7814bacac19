#!/bin/sh
# No stale header, ever: 2,000,000 records (1000000 per CPU, lossless) into
# 16 KiB x 8 sub-buffers (~7800 sub-buffer switches) while a reader pinned
# on the other CPU spins on GET_CURSOR and checks, the moment `produced`
# moves, every header s < produced: magic, commit == packet_seq_num + 1,
# packet_seq_num == s, uuid, cpu, content_size/packet_size in bits
# consistent with the geometry. Violations must be 0.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=st subbuf_size=16384 n_subbufs=8
lg_load channel=st
rmck_consume -n st --mode lossless --count 1000000 --pin cross --wait spin --min-subbufs 7600 ||
	fail "rmck_consume: 2M records, stale header check"
rm_unload
echo "ok: 2M records, no stale header"
