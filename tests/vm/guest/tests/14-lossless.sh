#!/bin/sh
# Lossless mode: the load generator writes 100000 records per CPU at full
# speed into 16 KiB x 8 while one reader per CPU buffer (on the other CPU)
# consumes through the mmap ABI. Every record arrives exactly once, in seq
# order, with a valid checksum; received == loadgen written per CPU;
# kernel records_dropped == 0; GET_STATS agrees; no stale header;
# timestamps ordered. A second run with a slow reader (0.5 ms per
# sub-buffer) makes the writer wait for space again and again; a third on
# the smallest ring (4096 x 2: 63 records per sub-buffer).
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
rm_unload
echo "ok: lossless stream complete and in order"
