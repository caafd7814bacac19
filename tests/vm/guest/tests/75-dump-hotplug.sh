#!/bin/sh
# relaymap-dump and CPU hotplug. cpu1 is offline when relaymap.ko loads, so
# the channel has no cpu1 buffer; relaymap-dump starts on cpu0 alone, then
# cpu1 comes online (relay creates its buffer, GET_INFO's cpu_mask reports
# it). The dumper picks it up (checked about once a second), says so once
# on stderr, and dumps it: (1) to cpu1.out, (2) into the merged stream
# (-o -). The load generator (lossless, a fixed count per CPU) runs on both
# CPUs; after SIGINT `relaymap-dump verify --loadgen-status` requires every
# record of both CPUs, byte-exact. The channel is opened by name; the new
# CPU is claimed by the running dumper (one more consumer fd and mapping).
# Control ioctls per sub-buffer are printed.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

on=/sys/devices/system/cpu/cpu1/online
[ -e "$on" ] || skip "$on does not exist (cpu1 not hot-pluggable in this guest)"
# Whatever happens, leave cpu1 online for the next tests.
trap 'echo 1 >"$on" 2>/dev/null' EXIT

offline_cpu1() {
	echo 0 >"$on" 2>/dev/null || skip "cannot offline cpu1 (echo 0 > $on failed)"
	[ "$(cat "$on")" = 0 ] || skip "cpu1 still online after echo 0 > $on"
}

# NAME OUT: one run. OUT is a directory or "-" (merged stream to /tmp/NAME.bin).
run_case() {
	name=$1
	out=$2
	offline_cpu1
	echo "--- $name: cpu1 offline at load; online CPUs: $(cat /sys/devices/system/cpu/online)"
	rm_load name=hp subbuf_size=65536 n_subbufs=8
	d=$(rm_dir hp)
	[ -e "$d/cpu1" ] && fail "$d/cpu1 exists although cpu1 was offline at load"
	lg_load channel=hp record_size=128 mode=lossless count=50000
	if [ "$out" = - ]; then
		DUMP_OUT=/tmp/$name.bin
		dump_start "/tmp/$name.err" hp -o - --stats-json "/tmp/$name.json"
		DUMP_OUT=
		dump=/tmp/$name.bin
		dest="the merged stream"
	else
		dump_start "/tmp/$name.err" hp -o "$out" --stats-json "/tmp/$name.json"
		dump=$out
		dest=$out/cpu1.out
	fi
	# The dumper holds the CPUs online at load (all but cpu1): one consumer
	# mapping each.
	nonline=$(grep -c '^processor' /proc/cpuinfo)
	assert_eq "$(grep -c 'relaymap-consumer' "/proc/$pid/maps")" "$nonline" "$name: buffer mappings before cpu1 came online"
	echo 1 >"$on" || fail "echo 1 > $on"
	[ -e "$d/cpu1" ] || fail "$d/cpu1 did not appear when cpu1 came online"
	# The dumper claims it within about a second (it says so on stderr).
	wait_line "/tmp/$name.err" '^relaymap-dump: cpu1 came online' 30 "$pid"
	assert_eq "$(grep -c 'relaymap-consumer' "/proc/$pid/maps")" $((nonline + 1)) "$name: buffer mappings after cpu1 came online"
	lg_start
	lg_wait_idle 120
	lg_status >"/tmp/$name.status"
	cat "/tmp/$name.status"
	kill -INT "$pid"
	dump_wait "$pid" "($name)" "/tmp/$name.err"
	cat "/tmp/$name.err"
	n=$(grep -c "^relaymap-dump: cpu1 came online, dumping it to $dest\$" "/tmp/$name.err")
	assert_eq "$n" 1 "$name: 'cpu1 came online' messages"
	[ "$(lg_stat written cpu 1)" -gt 0 ] || fail "$name: the load generator wrote nothing on cpu1"
	relaymap-dump verify "$dump" --loadgen-status "/tmp/$name.status" >/tmp/verify.out
	rc=$?
	cat /tmp/verify.out
	[ "$rc" = 0 ] || fail "$name: verify exited $rc"
	total=$(awk '$1 == "total" { print $5 }' "/tmp/$name.status")
	grep -q "^verified $total records, 0 lost, 0 corrupt\$" /tmp/verify.out ||
		fail "$name: verify: want $total records, 0 lost, 0 corrupt"
	ops=$(sed -n 's/^  "control_ops": \([0-9]*\),$/\1/p' "/tmp/$name.json")
	sbs=$(sed -n 's/^  "subbufs": \([0-9]*\),$/\1/p' "/tmp/$name.json")
	echo "$name: $ops control ioctls for $sbs sub-buffers"
	rm_unload
}

run_case files /tmp/dh
[ -s /tmp/dh/cpu1.out ] || fail "files: /tmp/dh/cpu1.out missing or empty"
ls -l /tmp/dh
rm -rf /tmp/dh
run_case merged -
echo "ok: a CPU that came online after the start was dumped, every record verified"
