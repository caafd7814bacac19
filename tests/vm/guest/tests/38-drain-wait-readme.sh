#!/bin/sh
# relaymap_chan_drain_wait() and kmod/README.md's out-of-tree example.
#  1. drain_wait through the example driver's `drain` parameter (flush,
#     then relaymap_chan_drain_wait(ch, MS)), with relaymap-dump holding
#     every CPU:
#     - nobody holds the channel: 0 at once;
#     - the dumper is stopped (SIGSTOP) with data unread: -ETIMEDOUT (-110)
#       after the timeout;
#     - the same, and the dumper continues (SIGCONT) while drain_wait
#       sleeps: 0 as soon as it drained, long before the timeout;
#     - a signal to the waiting process: -ERESTARTSYS (-512), at once;
#     - the stopped dumper is killed (its fds close) while drain_wait
#       sleeps: 0 (nobody holds a CPU any more).
#  2. hello_relaymap.ko, built by build.d/30-kmod-example.sh exactly as the
#     README says (files cut from it, make install-dev DESTDIR, the
#     module's own Kbuild with KBUILD_EXTRA_SYMBOLS), loads, writes 1000
#     records of its format at load; relaymap-dump drains them; its unload
#     (drain_wait up to 5 s, then destroy) returns drain_wait 0; the dump
#     holds seq 0..999 exactly once and the result text.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

EX_KO=/relaymap/kmod/rmexample.ko
HELLO_KO=/relaymap/kmod/hello_relaymap.ko
EX=/sys/module/rmexample/parameters
[ -f "$EX_KO" ] || fail "$EX_KO is not in the initramfs (kmod/examples/rmexample not built?)"
[ -f "$HELLO_KO" ] || fail "$HELLO_KO is not in the initramfs (build.d/30-kmod-example.sh)"

ex_wait_idle() {
	_i=0
	until grep -q '^state idle$' "$EX/counts"; do
		_i=$((_i + 1))
		[ "$_i" -le $(($1 * 10)) ] || { cat "$EX/counts"; fail "rmexample still running after $1 s"; }
		sleep 0.1
	done
}
# ex_write: one run of 300 kthread records per CPU (they fit the buffer).
ex_write() {
	echo 1 >"$EX/run" || fail "start rmexample"
	ex_wait_idle 60
	echo 0 >"$EX/run" || fail "stop rmexample"
}
# drain_result: $res and $ms of the last drain ("result R ms MS").
drain_result() {
	res=$(awk '{ print $2 }' "$EX/drain")
	ms=$(awk '{ print $4 }' "$EX/drain")
}
# drain_bg MS: `echo MS > drain` in the background ($dpid), returns once
# it sleeps in relaymap_chan_drain_wait() (its wchan, or its kernel stack:
# 5.10's wchan is always 0 with the ORC unwinder).
drain_bg() {
	echo "$1" >"$EX/drain" &
	dpid=$!
	_i=0
	until grep -q drain_wait "/proc/$dpid/wchan" "/proc/$dpid/stack" 2>/dev/null; do
		_i=$((_i + 1))
		if [ "$_i" -gt 100 ] || ! proc_alive "$dpid"; then
			cat "/proc/$dpid/wchan" "/proc/$dpid/stack" 2>/dev/null
			fail "the drain writer did not sleep in drain_wait (wchan above)"
		fi
		sleep 0.1
	done
}

echo "--- 1. relaymap_chan_drain_wait()"
rm_load name=
insmod "$EX_KO" subbuf_size=16384 n_subbufs=8 thread_records=300 printf_records=0 \
	try_printf_records=0 timer_records=0 || fail "insmod rmexample.ko"
echo 2000 >"$EX/drain" || fail "drain"
drain_result
echo "nobody holds the channel: drain_wait = $res after $ms ms"
assert_eq "$res" 0 "drain_wait without a consumer"

dump_start ./dump.err rmexample -o ./dump
dpump=$pid
kill -STOP "$dpump"
ex_write
echo 500 >"$EX/drain" || fail "drain"
drain_result
echo "dumper stopped, data unread: drain_wait(500 ms) = $res after $ms ms"
assert_eq "$res" -110 "drain_wait with a stopped consumer (-ETIMEDOUT)"
[ "$ms" -ge 490 ] || fail "drain_wait(500 ms) timed out after $ms ms"

drain_bg 20000
kill -CONT "$dpump"
wait "$dpid"
drain_result
echo "dumper continued while drain_wait slept: drain_wait(20 s) = $res after $ms ms"
assert_eq "$res" 0 "drain_wait once the consumer drained"
[ "$ms" -lt 15000 ] || fail "drain_wait took $ms ms: not woken by the hand-back"

kill -STOP "$dpump"
ex_write
drain_bg 30000
kill -TERM "$dpid"
wait "$dpid"
drain_result
echo "signal to the waiting process: drain_wait(30 s) = $res after $ms ms"
assert_eq "$res" -512 "drain_wait interrupted by a signal (-ERESTARTSYS)"
[ "$ms" -lt 15000 ] || fail "the signal ended drain_wait only after $ms ms"

drain_bg 30000
kill -KILL "$dpump"
wait "$dpid"
drain_result
echo "consumer killed while drain_wait slept: drain_wait(30 s) = $res after $ms ms"
assert_eq "$res" 0 "drain_wait once the consumer closed"
[ "$ms" -lt 15000 ] || fail "drain_wait took $ms ms: not woken by the close"
wait "$dpump" 2>/dev/null
rmmod rmexample || fail "rmmod rmexample"

echo "--- 2. kmod/README.md's hello_relaymap, built out of tree from the README"
insmod "$HELLO_KO" || fail "insmod hello_relaymap.ko (built from kmod/README.md)"
assert_eq "$(cat /sys/module/hello_relaymap/parameters/written)" 1000 "hello_relaymap: records written at load"
dump_start ./hello.err hello -o ./hello
rmmod hello_relaymap || fail "rmmod hello_relaymap"
dmesg | grep -q 'hello_relaymap: drain_wait: 0$' || { dmesg | tail -n 5; fail "hello_relaymap's unload: drain_wait did not return 0"; }
kill -INT "$pid"
dump_wait "$pid" "draining hello" ./hello.err
cat ./hello.err
rmck_exwalk hello ./hello --expect 1000 || fail "rmck_exwalk hello"
rm_unload
echo "ok: drain_wait 0 / -ETIMEDOUT / woken by hand-back / -ERESTARTSYS / woken by close; the README's module works as written"
