#!/bin/sh
# Lossless stream through every write path of the load generator and
# several record sizes, 16 KiB x 8, the channel RESET between runs:
#   api (relaymap_try_write)            64-byte records, 30000 per CPU
#   reserve (relaymap_try_reserve)     136-byte records, 20000 per CPU
#   relay_write                       1024-byte records,  4000 per CPU
#   __relay_write                       32-byte records, 30000 per CPU
#   api, the largest record (GET_INFO max_record_size: one per sub-buffer)
#   printf (relaymap_printf)    text records of 28-32 bytes, 30000 per CPU:
#                               content_size ends exactly at the last text
#                               byte (off the 8-byte grid), no padding counted
# Each: complete, in order, checksums valid, stats exact, no stale header.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=lm subbuf_size=16384 n_subbufs=8
lg_load channel=lm
for run in api:64:30000 reserve:136:20000 relay_write:1024:4000 __relay_write:32:30000 api:max:1000 printf:64:30000; do
	m=${run%%:*}
	rest=${run#*:}
	size=${rest%%:*}
	count=${rest#*:}
	echo "--- method $m, record_size $size, $count records per CPU"
	rmck_consume -n lm --reset --mode lossless --method "$m" --record-size "$size" \
		--count "$count" --min-subbufs 100 ||
		fail "rmck_consume lossless, method $m, record_size $size"
done
rm_unload
echo "ok: lossless through api, reserve, relay_write, __relay_write and printf, records of 32 bytes to max_record_size"
