#!/bin/sh
# 2000 FLUSHes (cpu0, cpu1, all in turn) while the load generator writes at
# full speed on both CPUs (lossless) and readers drain concurrently; then
# the whole stream must be intact: received == written, seq order,
# checksums, FLUSHED headers == GET_STATS flushes. The same with 500
# FLUSHes against the reserve/commit and __relay_write (preemption off
# only) writers. Then FLUSH/read in lockstep at 50000 records/s per CPU.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=fs subbuf_size=16384 n_subbufs=8
lg_load channel=fs
rmck_consume -n fs --mode lossless --duration-ms 1 --flushes 2000 --min-subbufs 100 ||
	fail "rmck_consume with 2000 flushes at full speed"
for m in reserve __relay_write; do
	echo "--- 500 flushes, method $m"
	rmck_consume -n fs --reset --mode lossless --method "$m" --duration-ms 1 --flushes 500 --min-subbufs 50 ||
		fail "rmck_consume with 500 flushes, method $m"
done
rm_unload

rm_load name=fs2 subbuf_size=16384 n_subbufs=8
lg_load channel=fs2
# 50000 records/s per CPU: a sub-buffer fills in ~5 ms, so FLUSHes every
# 2 ms mix with natural switches (at full speed a lossless writer keeps the
# ring full and FLUSH rightly finds no open sub-buffer to close).
rmck_flush -n fs2 --rate 50000 --iterations 200 --interval-ms 2 || fail "rmck_flush at 50000 records/s"
rm_unload
echo "ok: stream intact under 2000+ flushes at full speed"
