#!/bin/sh
# SIGINT drains everything produced before it. (1) The load generator
# writes a fixed count and stops, then SIGINT: the dump holds exactly what
# the loadgen wrote (received == written on every CPU). (2) SIGINT while the
# loadgen still runs at full speed: every record written before the signal
# is in the dump, seq continuous from 0 without a gap, then the loadgen is
# stopped. Also SIGTERM behaves like SIGINT.
# Volumes are bounded by counts and output size, never by time: a faster
# machine must not fill /tmp (CI once wrote 480 MB in 2 s here). The
# channel is opened by name; every start waits for the dumper's readiness
# line (signal handlers installed, every CPU claimed), never a fixed sleep.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

# wait_bytes DIR KIB MAX_S: wait until the files in DIR hold KIB KiB, or
# MAX_S seconds have passed.
wait_bytes() {
	_i=0
	while [ "$_i" -lt $(($3 * 20)) ]; do
		_k=$(du -sk "$1" 2>/dev/null | cut -f1)
		[ "${_k:-0}" -lt "$2" ] || return 0
		sleep 0.05
		_i=$((_i + 1))
	done
}

rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=128 mode=lossless count=250000

echo "--- 1: loadgen stops, then SIGINT"
dump_start /tmp/d1.err dump -o /tmp/d1
lg_start
lg_wait_idle 60
lg_status >/tmp/s1
kill -INT "$pid"
dump_wait "$pid" "on SIGINT" /tmp/d1.err
cat /tmp/d1.err
grep -q 'stopped by signal' /tmp/d1.err || fail "summary does not say stopped by signal"
check_verify /tmp/d1 --loadgen-status /tmp/s1
rm -rf /tmp/d1

echo "--- 2: SIGINT during full-speed load"
rm_unload
rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=128 mode=lossless
dump_start /tmp/d2.err dump -o /tmp/d2
lg_start
wait_bytes /tmp/d2 65536 3 # 64 MiB dumped, or 3 s
lg_status >/tmp/s2
grep -q '^state running' /tmp/s2 || fail "the load generator was not running at SIGINT"
kill -INT "$pid"
dump_wait "$pid" "on SIGINT under load" /tmp/d2.err
lg_stop
cat /tmp/s2 /tmp/d2.err
lg_status
check_verify /tmp/d2 --at-least /tmp/s2
rm -rf /tmp/d2

echo "--- 3: SIGTERM"
rm_unload
rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=64 mode=lossless count=50000
dump_start /tmp/d3.err dump -o /tmp/d3
lg_start
lg_wait_idle 60
lg_status >/tmp/s3
kill -TERM "$pid"
dump_wait "$pid" "on SIGTERM" /tmp/d3.err
check_verify /tmp/d3 --loadgen-status /tmp/s3
rm_unload
echo "ok: nothing produced before the signal was lost"
