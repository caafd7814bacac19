#!/bin/sh
# The example out-of-tree driver (kmod/examples/rmexample, built against
# relaymap's `make install-dev` files, as a third party would) writes its
# own record format into its own channel from every context: a kthread per
# CPU (relaymap_write_wait(), relaymap_printf_wait() lossless,
# relaymap_try_printf()) and an hrtimer per CPU in hardirq context
# (relaymap_write()). relaymap-dump drains it to per-CPU files while it
# writes; rmck_exwalk checks every record (format, checksum, its CPU, seq
# order) and, against the module's own counts, that every record it wrote
# arrived exactly once (per CPU and kind: received == written, every seq
# below its attempts). The dumper's count, the kernel's drops (== the
# timer's drops, the only writer that may drop) and rejections (0) agree.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

EX_KO=/relaymap/kmod/rmexample.ko
EX=/sys/module/rmexample/parameters
[ -f "$EX_KO" ] || fail "$EX_KO is not in the initramfs (kmod/examples/rmexample not built?)"

# ex_wait_idle MAX_S: until the module's writers are all done.
ex_wait_idle() {
	_i=0
	until grep -q '^state idle$' "$EX/counts"; do
		_i=$((_i + 1))
		[ "$_i" -le $(($1 * 10)) ] || { cat "$EX/counts"; fail "rmexample still running after $1 s"; }
		sleep 0.1
	done
}
# ex_total KEY: the module's total of KEY.
ex_total() {
	awk -v k="$1" '$1 == "total" { for (i = 2; i < NF; i++) if ($i == k) print $(i + 1) }' "$EX/counts"
}

rm_load name=
insmod "$EX_KO" subbuf_size=16384 n_subbufs=8 thread_records=20000 printf_records=3000 \
	try_printf_records=3000 timer_records=4000 timer_period_us=200 ||
	fail "insmod rmexample.ko"
dmesg | grep -q 'rmexample: channel rmexample: max data 16256 bytes per record' ||
	fail "rmexample did not report its channel (relaymap_max_data_size() = 16384 - 112 - 16)"

dump_start ./dump.err rmexample -o ./dump
echo 1 >"$EX/run" || fail "start rmexample"
ex_wait_idle 240
tee ./counts <"$EX/counts"
kill -INT "$pid"
dump_wait "$pid" "draining rmexample" ./dump.err
cat ./dump.err
echo 0 >"$EX/run" || fail "stop rmexample"

echo "--- every record, exactly once"
rmck_exwalk rmexample ./dump --counts ./counts || fail "rmck_exwalk"

written=$(ex_total written)
[ "$written" -gt 0 ] || fail "rmexample wrote nothing"
[ "$(ex_total thread_dropped)" = 0 ] || fail "relaymap_write_wait() dropped records (timed out)"
[ "$(ex_total printf_dropped)" = 0 ] || fail "relaymap_printf_wait() dropped records (timed out)"
for k in thread printf try_printf timer; do
	[ "$(ex_total $k)" -gt 0 ] || fail "no $k records written"
done
# The dumper's summary: "..., N records (...), D dropped by the kernel, R rejected as too large, ..."
got=$(sed -n 's/.* \([0-9][0-9]*\) records (.*/\1/p' ./dump.err | head -n 1)
assert_eq "$got" "$written" "records in relaymap-dump's summary vs rmexample's written"
kd=$(sed -n 's/.*, \([0-9][0-9]*\) dropped by the kernel,.*/\1/p' ./dump.err | head -n 1)
assert_eq "$kd" "$(ex_total timer_dropped)" "kernel drops (dumper summary) vs the hrtimer's drops"
kr=$(sed -n 's/.*, \([0-9][0-9]*\) rejected as too large,.*/\1/p' ./dump.err | head -n 1)
assert_eq "$kr" 0 "kernel rejections"

rmmod rmexample || fail "rmmod rmexample"
rm_unload
echo "ok: rmexample's $written records (kthreads, hrtimers, printf lossless and try) each delivered once by relaymap-dump"
