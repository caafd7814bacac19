#!/bin/sh
# Smoke test of kmod/: relaymap.ko with a small channel, the load generator
# writes a fixed count per CPU through every method (lossless, so nothing
# is dropped even though nobody reads), drop mode counts every refused
# record, status is exact, an unbounded run keeps going until stopped, bad
# parameters are refused (sub-buffers not a whole number of pages too),
# both modules unload.
# timeout: 180
. /relaymap/lib.sh

# 8 sub-buffers of 64 KiB: 200 records of 64 bytes fit without a reader.
rm_load subbuf_size=65536 n_subbufs=8
lg_load count=200

ncpu=$(grep -c '^processor' /proc/cpuinfo)
want=$((ncpu * 200))

# wait_idle: poll the status until the threads have finished their count.
wait_idle() {
	i=0
	while [ "$(lg_status | awk '$1 == "state" { print $2 }')" != idle ]; do
		i=$((i + 1))
		[ "$i" -gt 600 ] && { lg_status; fail "load generator still running after 60 s"; }
		sleep 0.1
	done
}

for m in api reserve relay_write __relay_write; do
	lg_set method "$m"
	lg_start
	wait_idle
	lg_status
	assert_eq "$(lg_stat attempts total)" "$want" "$m: attempts"
	assert_eq "$(lg_stat written total)" "$want" "$m: written"
	assert_eq "$(lg_stat dropped total)" 0 "$m: dropped"
	c=0
	while [ "$c" -lt "$ncpu" ]; do
		assert_eq "$(lg_stat written cpu $c)" 200 "$m: written on cpu $c"
		c=$((c + 1))
	done
	lg_stop
	# The next method starts from an empty channel: unload and reload.
	rm_unload
	rm_load subbuf_size=65536 n_subbufs=8
	lg_load count=200
done

# Drop mode against a tiny channel that nobody reads: every record is
# either written or counted as dropped.
rm_unload
rm_load subbuf_size=4096 n_subbufs=2
lg_load count=2000 mode=drop
for m in api relay_write; do
	lg_set method "$m"
	lg_start
	wait_idle
	lg_status
	att=$(lg_stat attempts total)
	w=$(lg_stat written total)
	d=$(lg_stat dropped total)
	assert_eq "$att" $((ncpu * 2000)) "$m drop: attempts"
	assert_eq "$((w + d))" "$att" "$m drop: written + dropped"
	[ "$d" -gt 0 ] || fail "$m drop: nothing dropped with a 8 KiB buffer"
	lg_stop
	rm_unload
	rm_load subbuf_size=4096 n_subbufs=2
	lg_load count=2000 mode=drop
done

# Unbounded run: it keeps writing until stopped; stop must end it; bad
# parameters must be refused.
lg_set count 0
lg_set mode lossless
lg_start
# (The 8 KiB ring nobody reads fills up: the lossless writers then wait.)
i=0
until [ "$(lg_stat attempts total)" -gt 0 ]; do
	i=$((i + 1))
	[ "$i" -gt 100 ] && { lg_status; fail "unbounded run made no attempt in 10 s"; }
	sleep 0.1
done
assert_eq "$(lg_status | awk '$1 == "state" { print $2 }')" running "state while running"
lg_stop
assert_eq "$(lg_status | awk '$1 == "state" { print $2 }')" idle "state after stop"
lg_set record_size 20
if (lg_start) >/dev/null 2>&1; then
	lg_stop
	fail "record_size 20 accepted"
fi
lg_set record_size 64
rm_unload

# Bad relaymap parameters are refused at load: sub-buffers must be whole
# pages now (ABI 2), at least 2 of them.
for bad in subbuf_size=100 subbuf_size=4097 subbuf_size=12296 subbuf_size=6144 n_subbufs=1; do
	if insmod "$RM_KO" "$bad" 2>/dev/null; then
		rm_unload
		fail "relaymap loaded with $bad"
	fi
done
grep -q '^relaymap ' /proc/modules && fail "relaymap loaded after bad parameters"

echo "ok: loadgen wrote exact counts through all four methods, drops counted"
exit 0
