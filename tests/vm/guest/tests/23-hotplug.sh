#!/bin/sh
# CPU hotplug: relaymap loaded while cpu1 is offline has no cpu1 buffer
# (no debugfs cpu1 file, GET_INFO's cpu_mask is {0}, OPEN_CONSUMER(ALL)
# gives -1 for it); the channel works on cpu0 alone (FLUSH(all) included);
# when cpu1 comes online its buffer and file appear, GET_INFO reports it,
# OPEN_CONSUMER(ALL) claims it and both CPUs stream losslessly; offlining
# cpu1 again keeps its buffer (GET_INFO still reports it, it can still be
# claimed and drained) and the channel keeps working after it is back; a
# partial sub-buffer of cpu1 taken offline is closed by FLUSH(all) from
# cpu0.
# timeout: 240
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

on=/sys/devices/system/cpu/cpu1/online
[ -e "$on" ] || skip "$on does not exist (cpu1 not hot-pluggable in this guest)"
# Whatever happens, leave cpu1 online for the next tests.
trap 'echo 1 >"$on" 2>/dev/null' EXIT
echo 0 >"$on" 2>/dev/null || skip "cannot offline cpu1 (echo 0 > $on failed)"
[ "$(cat "$on")" = 0 ] || skip "cpu1 still online after echo 0 > $on"
echo "cpu1 offline; online CPUs: $(cat /sys/devices/system/cpu/online)"
# Streaming failures are collected so that every hotplug step still runs.
failed=""

rm_load name=hp subbuf_size=16384 n_subbufs=8
d=$(rm_dir hp)
[ -e "$d/cpu0" ] || fail "$d/cpu0 missing"
[ -e "$d/cpu1" ] && fail "$d/cpu1 exists although cpu1 was offline when relaymap was loaded"
rmck_info -n hp --subbuf-size 16384 --n-subbufs 8 --cpus 0 ||
	fail "GET_INFO with cpu1 offline"
lg_load channel=hp
echo "--- cpu0 alone"
rmck_consume -n hp --mode lossless --count 20000 --min-subbufs 50 ||
	failed="$failed; streaming with cpu1 offline at load"

echo 1 >"$on" || fail "echo 1 > $on"
echo "cpu1 back online; online CPUs: $(cat /sys/devices/system/cpu/online)"
[ -e "$d/cpu1" ] || fail "$d/cpu1 did not appear when cpu1 came online"
assert_eq "$(file_mode "$d/cpu1")" 0400 "mode of $d/cpu1"
rmck_info -n hp --subbuf-size 16384 --n-subbufs 8 --cpus 0-1 ||
	fail "GET_INFO after cpu1 came online"
echo "--- both CPUs"
rmck_consume -n hp --reset --mode lossless --count 20000 --min-subbufs 100 ||
	failed="$failed; streaming after cpu1 came online"

echo 0 >"$on" || fail "offline cpu1 a second time"
[ -e "$d/cpu1" ] || fail "$d/cpu1 vanished when cpu1 went offline"
rmck_info -n hp --subbuf-size 16384 --n-subbufs 8 --cpus 0-1 ||
	fail "GET_INFO with cpu1 offline again (its buffer stays)"
echo "--- cpu0 alone, cpu1's buffer kept"
rmck_consume -n hp --reset --mode lossless --count 20000 --min-subbufs 50 ||
	failed="$failed; streaming with cpu1 offline again"
echo 1 >"$on" || fail "online cpu1 a second time"
echo "--- both CPUs again"
rmck_consume -n hp --reset --mode lossless --count 20000 --min-subbufs 100 ||
	failed="$failed; streaming after cpu1 came back"
echo "--- both CPUs, cpu1 goes offline with a partial sub-buffer, FLUSH(all) from cpu0"
rmck_consume -n hp --reset --mode lossless --count 20000 --min-subbufs 100 --offline-before-flush 1 ||
	failed="$failed; FLUSH of an offline CPU's partial sub-buffer"
echo 1 >"$on" || fail "online cpu1 a third time"
echo "--- both CPUs after that"
rmck_consume -n hp --reset --mode lossless --count 20000 --min-subbufs 100 ||
	failed="$failed; streaming after the offline flush"
rm_unload
[ -z "$failed" ] || fail "${failed#; }"
echo "ok: hotplug: late CPU gets its file and stream, offline keeps the buffer"
