#!/bin/sh
# SIGINT drains everything produced before it. (1) The load generator runs
# for 2 s (duration_ms), then SIGINT: the dump holds exactly what the
# loadgen wrote (received == written on every CPU). (2) SIGINT while the
# loadgen still runs at full speed: every record written before the signal
# is in the dump, seq continuous from 0 without a gap, then the loadgen is
# stopped. Also SIGTERM behaves like SIGINT.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

lg_wait_idle() {
	_i=0
	while [ "$(lg_status | awk '$1 == "state" { print $2 }')" != idle ]; do
		sleep 0.1
		_i=$((_i + 1))
		[ "$_i" -lt 600 ] || fail "load generator still running after 60 s"
	done
}

check_verify() { # DIR ARGS...: run verify, print it, fail unless 0 lost/corrupt
	_d=$1
	shift
	relaymap-dump verify "$_d" "$@" >/tmp/verify.out
	_rc=$?
	cat /tmp/verify.out
	[ "$_rc" = 0 ] || fail "verify $_d exited $_rc"
	grep -q ' 0 lost, 0 corrupt$' /tmp/verify.out || fail "verify $_d: loss or corruption"
}

rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=128 mode=lossless duration_ms=2000

echo "--- 1: loadgen stops, then SIGINT"
relaymap-dump "$(rm_dir dump)" -o /tmp/d1 2>/tmp/d1.err &
pid=$!
sleep 0.3
lg_start
lg_wait_idle
lg_status >/tmp/s1
kill -INT "$pid"
wait "$pid" || { cat /tmp/d1.err; fail "relaymap-dump exited $? on SIGINT"; }
cat /tmp/d1.err
grep -q 'stopped by signal' /tmp/d1.err || fail "summary does not say stopped by signal"
check_verify /tmp/d1 --loadgen-status /tmp/s1
rm -rf /tmp/d1

echo "--- 2: SIGINT during full-speed load"
rm_unload
rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=128 mode=lossless
relaymap-dump "$(rm_dir dump)" -o /tmp/d2 2>/tmp/d2.err &
pid=$!
sleep 0.3
lg_start
sleep 2
lg_status >/tmp/s2
kill -INT "$pid"
wait "$pid" || { cat /tmp/d2.err; fail "relaymap-dump exited $? on SIGINT under load"; }
lg_stop
cat /tmp/s2 /tmp/d2.err
lg_status
check_verify /tmp/d2 --at-least /tmp/s2
rm -rf /tmp/d2

echo "--- 3: SIGTERM"
rm_unload
rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=64 mode=lossless count=50000
relaymap-dump "$(rm_dir dump)" -o /tmp/d3 2>/tmp/d3.err &
pid=$!
sleep 0.3
lg_start
lg_wait_idle
lg_status >/tmp/s3
kill -TERM "$pid"
wait "$pid" || { cat /tmp/d3.err; fail "relaymap-dump exited $? on SIGTERM"; }
check_verify /tmp/d3 --loadgen-status /tmp/s3
rm_unload
echo "ok: nothing produced before the signal was lost"
