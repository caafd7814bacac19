#!/bin/sh
# Lossless stream through every write path of the load generator: api
# (relaymap_try_write), reserve (relaymap_try_reserve/commit), relay_write
# and __relay_write; 30000 records per CPU each, 16 KiB x 8, the channel
# RESET between runs; complete, in order, checksums valid, stats exact.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=lm subbuf_size=16384 n_subbufs=8
lg_load channel=lm
for m in api reserve relay_write __relay_write; do
	echo "--- method $m"
	rmck_consume -n lm --reset --mode lossless --method "$m" --count 30000 --min-subbufs 200 ||
		fail "rmck_consume lossless, method $m"
done
rm_unload
echo "ok: lossless through api, reserve, relay_write and __relay_write"
