#!/bin/sh
# Lossless writing from process context, and honest counters (issue 9):
#  1. Sleeping writers against a slow consumer (rmck_consume --delay-us):
#     the load generator's lossless methods sleep while the buffer is full
#     (api: relaymap_write_wait(); printf: relaymap_printf_wait(); reserve:
#     relaymap_wait_space()). First every writer fills its buffer and
#     blocks: for 1 s its CPU time and voluntary context switches
#     (/proc/PID/schedstat, status) do not move and nothing is written
#     (no busy-wait). Then the slow consumer drains: every record arrives
#     once, 0 dropped, and each writer slept about once per wait
#     (sleeps <= waits + 2); the figures are printed.
#  2. A _wait writer that times out (rmexample, wait_ms=1, nobody
#     consuming a 2 x 16 KiB buffer): -ETIMEDOUT, counted as dropped by the
#     kernel exactly as often as the module saw it; a dump of what is in
#     the buffer has every written record once, the dropped ones missing.
#  3. Oversize writes (rmexample oversize=25): relaymap_write() and
#     relaymap_write_wait() of max data + 1 bytes are -EMSGSIZE and counted
#     as rejected (25 + 25 per CPU: cursor, stats, relaymap stat, the
#     dumper), relaymap_try_write() is counted nowhere, nothing is dropped.
# timeout: 600
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

EX_KO=/relaymap/kmod/rmexample.ko
EX=/sys/module/rmexample/parameters
[ -f "$EX_KO" ] || fail "$EX_KO is not in the initramfs (kmod/examples/rmexample not built?)"

ex_wait_idle() {
	_i=0
	until grep -q '^state idle$' "$EX/counts"; do
		_i=$((_i + 1))
		[ "$_i" -le $(($1 * 10)) ] || { cat "$EX/counts"; fail "rmexample still running after $1 s"; }
		sleep 0.1
	done
}
ex_cpus() {
	awk '$1 == "cpu" { print $2 }' ./counts
}
ex_get() {
	awk -v who="$1" -v k="$2" '
		{ key = ($1 == "cpu") ? $1 " " $2 : $1 }
		key == who { for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' ./counts
}
# stat_col N: column N of `relaymap stat rmexample`, one line per CPU ("CPU VALUE").
stat_col() {
	relaymap stat rmexample | awk -v n="$1" '$1 ~ /^[0-9]+$/ { print $1, $n }'
}

echo "--- 1. sleeping lossless writers, slow consumer"
rm_load name=ww subbuf_size=16384 n_subbufs=4
lg_load channel=ww
for m in api printf reserve; do
	count=20000
	[ "$m" = api ] || count=6000
	echo "--- method=$m: $count records per CPU into 4 x 16 KiB, consumer 5 ms per sub-buffer"
	rmck_consume -n ww --reset --mode lossless --method "$m" --count "$count" \
		--block-ms 1000 --delay-us 5000 --no-busy-wait --min-subbufs 20 ||
		fail "rmck_consume lossless method=$m against a slow consumer"
	lg_status | sed 's/^/  /'
done
rm_unload

echo "--- 2. relaymap_write_wait() timing out: counted as dropped"
rm_load name=
insmod "$EX_KO" subbuf_size=16384 n_subbufs=2 thread_records=1500 printf_records=0 \
	try_printf_records=0 timer_records=0 wait_ms=1 || fail "insmod rmexample.ko"
echo 1 >"$EX/run" || fail "start rmexample"
ex_wait_idle 120
tee ./counts <"$EX/counts"
dropped=$(ex_get total thread_dropped)
[ "$dropped" -gt 0 ] || fail "1500 records per CPU into 2 x 16 KiB nobody consumes: no write_wait() timed out"
assert_eq "$(($(ex_get total thread) + dropped))" "$(($(grep -c '^cpu ' ./counts) * 1500))" \
	"written + timed out == attempts"
stat_col 5 >./kdrops
for c in $(ex_cpus); do
	assert_eq "$(awk -v c="$c" '$1 == c { print $2 }' ./kdrops)" "$(ex_get "cpu $c" thread_dropped)" \
		"cpu $c: kernel records_dropped vs the timed-out relaymap_write_wait()s"
done
dump_start ./dump2.err rmexample -o ./dump2
kill -INT "$pid"
dump_wait "$pid" "draining rmexample" ./dump2.err
cat ./dump2.err
rmck_exwalk rmexample ./dump2 --counts ./counts || fail "rmck_exwalk: the written records, once, the timed-out ones missing"
echo 0 >"$EX/run"
rmmod rmexample || fail "rmmod rmexample"

echo "--- 3. oversize writes: -EMSGSIZE, counted as rejected, never as dropped"
insmod "$EX_KO" subbuf_size=16384 n_subbufs=8 thread_records=100 printf_records=10 \
	try_printf_records=10 timer_records=0 oversize=25 || fail "insmod rmexample.ko"
echo 1 >"$EX/run" || fail "start rmexample"
ex_wait_idle 120
tee ./counts <"$EX/counts"
stat_col 6 >./krej
stat_col 5 >./kdrop
for c in $(ex_cpus); do
	assert_eq "$(ex_get "cpu $c" rejected)" 50 "cpu $c: relaymap_write() + relaymap_write_wait() oversize refused"
	assert_eq "$(ex_get "cpu $c" try_rejected)" 25 "cpu $c: relaymap_try_write() oversize refused"
	assert_eq "$(awk -v c="$c" '$1 == c { print $2 }' ./krej)" 50 \
		"cpu $c: kernel records_rejected (try_write counts nowhere)"
	assert_eq "$(awk -v c="$c" '$1 == c { print $2 }' ./kdrop)" 0 "cpu $c: kernel records_dropped"
done
dump_start ./dump3.err rmexample -o ./dump3
kill -INT "$pid"
dump_wait "$pid" "draining rmexample" ./dump3.err
cat ./dump3.err
n=$(grep -c '^cpu ' ./counts)
grep -q ", 0 dropped by the kernel, $((n * 50)) rejected as too large," ./dump3.err ||
	fail "relaymap-dump does not report 0 dropped, $((n * 50)) rejected"
rmck_exwalk rmexample ./dump3 --counts ./counts || fail "rmck_exwalk"
echo 0 >"$EX/run"
rmmod rmexample || fail "rmmod rmexample"
rm_unload
echo "ok: lossless writers sleep (no CPU, no wakeups while blocked; ~1 sleep per wait), 0 dropped; timeouts count as drops; oversize counts as rejected"
