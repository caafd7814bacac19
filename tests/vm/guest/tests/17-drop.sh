#!/bin/sh
# Drop mode: the load generator writes at full speed for 2 s; a reader that
# starts late (300 ms) and then sleeps 5 ms per sub-buffer makes the
# 16 KiB x 8 buffer fill up again and again (the writer keeps running
# after the reader frees space, so later sub-buffers carry the drops).
# Per CPU: kernel records_dropped == loadgen dropped == records missing in
# the seq the reader saw (gaps + tail); received == loadgen written;
# nothing rejected; sub-buffer headers: cumulative events_discarded
# non-decreasing, equal to the records missing so far, DROPS flag exactly
# where it grew, last <= kernel total.
# 20 oversize writes per CPU are counted as rejected, apart from the drops.
# Second run: the same for 1.5 s with 500 FLUSHes (one per 2 ms) while the
# buffer overflows.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=dr subbuf_size=16384 n_subbufs=8
lg_load channel=dr
rmck_consume -n dr --mode drop --duration-ms 2000 --pause-ms 300 --delay-us 5000 --rejects 20 ||
	fail "rmck_consume drop mode with a slow reader"
echo "--- drops and flushes"
rmck_consume -n dr --reset --mode drop --duration-ms 1500 --pause-ms 100 --delay-us 2000 \
	--flushes 500 --flush-interval-us 2000 ||
	fail "rmck_consume drop mode with a slow reader and 500 flushes"
rm_unload
echo "ok: drops counted exactly by kernel, loadgen and sequence gaps"
