#!/bin/sh
# The example driver's records (kmod/examples/rmexample: kthreads with
# relaymap_write_wait()/relaymap_printf_wait()/relaymap_try_printf(),
# hrtimers in hardirq with relaymap_write()) through the two other
# consumers, each on a fresh channel while the module writes:
#  - the C API (examples/c consumer.c, `relaymap-consumer --name`): per CPU
#    records == the module's written, the kernel's drops == the timer's;
#  - the SDK (`relaymap-vmtest count`, tests/vm/rust): per CPU and type
#    (binary 0x100 == kthread + timer, text 0x1 == printf + try_printf)
#    == the module's counts, and its copy of every CPU's records passes
#    rmck_exwalk: every record the module wrote, exactly once.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

EX_KO=/relaymap/kmod/rmexample.ko
EX=/sys/module/rmexample/parameters
[ -f "$EX_KO" ] || fail "$EX_KO is not in the initramfs (kmod/examples/rmexample not built?)"
command -v relaymap-consumer >/dev/null || fail "relaymap-consumer not built (build.d/60-ffi.sh)"
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"

ex_wait_idle() {
	_i=0
	until grep -q '^state idle$' "$EX/counts"; do
		_i=$((_i + 1))
		[ "$_i" -le $(($1 * 10)) ] || { cat "$EX/counts"; fail "rmexample still running after $1 s"; }
		sleep 0.1
	done
}
# ex_get WHO KEY: the module's KEY on the line of WHO ("cpu N" or "total").
ex_get() {
	awk -v who="$1" -v k="$2" '
		{ key = ($1 == "cpu") ? $1 " " $2 : $1 }
		key == who { for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' ./counts
}
ex_load() {
	insmod "$EX_KO" subbuf_size=16384 n_subbufs=8 thread_records=20000 printf_records=3000 \
		try_printf_records=3000 timer_records=4000 timer_period_us=200 ||
		fail "insmod rmexample.ko"
}
ex_cpus() {
	awk '$1 == "cpu" { print $2 }' ./counts
}

rm_load name=

echo "--- C API: relaymap-consumer --name rmexample"
ex_load
ffi_start relaymap-consumer ./c.out --name rmexample
echo 1 >"$EX/run" || fail "start rmexample"
ex_wait_idle 240
cat "$EX/counts" >./counts
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
sed 's/^/  /' ./c.out
cat ./counts
[ "$rc" = 0 ] || fail "relaymap-consumer exited $rc"
for c in $(ex_cpus); do
	assert_eq "$(awk -v c="$c" '$1 == "cpu" && $2 == c { print $4 }' ./c.out)" "$(ex_get "cpu $c" written)" \
		"C consumer: records of cpu $c vs rmexample's written"
done
assert_eq "$(awk '$1 == "total" { print $3 }' ./c.out)" "$(ex_get total written)" "C consumer: total records"
assert_eq "$(awk '$1 == "loss" { print $3 }' ./c.out)" "$(ex_get total timer_dropped)" \
	"C consumer: loss records_dropped vs the hrtimer's drops"
assert_eq "$(awk '$1 == "loss" { print $5 }' ./c.out)" 0 "C consumer: loss records_rejected"
echo 0 >"$EX/run"
rmmod rmexample || fail "rmmod rmexample"

echo "--- SDK: relaymap-vmtest count --channel rmexample"
ex_load
rm -f ./stop
relaymap-vmtest count --channel rmexample --stop-file ./stop --out ./sdk --timeout-s 300 >./sdk.out 2>&1 &
pid=$!
wait_line ./sdk.out '^count: consuming rmexample' 60 "$pid"
echo 1 >"$EX/run" || fail "start rmexample"
ex_wait_idle 240
cat "$EX/counts" >./counts
touch ./stop
rc=0
wait "$pid" || rc=$?
sed 's/^/  /' ./sdk.out
cat ./counts
[ "$rc" = 0 ] || fail "relaymap-vmtest count exited $rc"
for c in $(ex_cpus); do
	bin=$(sed -n "s/^count: cpu $c event 0 type 0x100 records \([0-9]*\)$/\1/p" ./sdk.out)
	txt=$(sed -n "s/^count: cpu $c event 1 type 0x1 records \([0-9]*\)$/\1/p" ./sdk.out)
	assert_eq "${bin:-0}" "$(($(ex_get "cpu $c" thread) + $(ex_get "cpu $c" timer)))" \
		"SDK: binary records (type 0x100) of cpu $c vs rmexample's thread + timer"
	assert_eq "${txt:-0}" "$(($(ex_get "cpu $c" printf) + $(ex_get "cpu $c" try_printf)))" \
		"SDK: text records of cpu $c vs rmexample's printf + try_printf"
	assert_eq "$(sed -n "s/^count: cpu $c records \([0-9]*\)$/\1/p" ./sdk.out)" "$(ex_get "cpu $c" written)" \
		"SDK: records of cpu $c"
	assert_eq "$(sed -n "s/^count: cpu $c loss records_dropped \([0-9]*\) .*/\1/p" ./sdk.out)" \
		"$(ex_get "cpu $c" timer_dropped)" "SDK: Loss.records_dropped of cpu $c vs the hrtimer's drops"
done
rmck_exwalk rmexample ./sdk --counts ./counts || fail "rmck_exwalk on the SDK's copy"
echo 0 >"$EX/run"
rmmod rmexample || fail "rmmod rmexample"
rm_unload
echo "ok: rmexample's records through the C API and the SDK: counts equal the module's, every record once"
