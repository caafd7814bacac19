#!/bin/sh
# Lossless mode: the load generator writes 100000 records per CPU at full
# speed into 16 KiB x 8 while one reader per CPU buffer (on the other CPU)
# consumes through its consumer fd (/dev/relaymap, OPEN_CONSUMER, mmap).
# Every record arrives exactly once, in seq order, with a valid checksum;
# received == loadgen written per CPU;
# kernel records_dropped == 0; GET_STATS agrees; no stale header;
# timestamps ordered. A second run with a slow reader (0.5 ms per
# sub-buffer) makes the writer wait for space again and again; a third on
# the smallest ring (4096 x 2: 62 records per sub-buffer), then on it 100
# writes larger than max_data_size per CPU before the records (and as many
# try_ writes): records_rejected == 100 per CPU in the cursor, the stats,
# the load generator and the last header's events_rejected; 0 dropped.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=ll subbuf_size=16384 n_subbufs=8
lg_load channel=ll
rmck_consume -n ll --mode lossless --count 100000 --min-subbufs 700 ||
	fail "rmck_consume lossless, 100000 records per CPU"
echo "--- slow reader"
rmck_consume -n ll --reset --mode lossless --count 30000 --delay-us 500 --min-subbufs 200 ||
	fail "rmck_consume lossless with a slow reader"
rm_unload
echo "--- the smallest ring: 4096 x 2"
rm_load name=ll2 subbuf_size=4096 n_subbufs=2
lg_load channel=ll2
rmck_consume -n ll2 --mode lossless --count 50000 --min-subbufs 1000 ||
	fail "rmck_consume lossless on 4096 x 2"
echo "--- 100 oversize writes per CPU first: counted as rejected, never as dropped"
rmck_consume -n ll2 --reset --mode lossless --count 20000 --rejects 100 --min-subbufs 300 ||
	fail "rmck_consume lossless with 100 rejected writes per CPU"
rm_unload
echo "ok: lossless stream complete and in order"
