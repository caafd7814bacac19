#!/bin/sh
# relaymap-dump against the real module, the channel opened by name through
# /dev/relaymap. (1) Full load: the load generator writes 200000 records
# per CPU at full speed (lossless mode: it waits for space), relaymap-dump
# writes per-CPU files; it maps each CPU buffer exactly once (one consumer
# fd per CPU, nothing from debugfs); after the loadgen finished, SIGINT
# makes it flush, drain and exit 0; `relaymap-dump verify` checks every
# record byte-exact (checksum + fill pattern), per-CPU seq continuity from
# 0, and received == loadgen written per CPU. (2) Keeping up at 256 KiB
# sub-buffers (a rate-limited load the dumper outpaces): control ioctls
# per sub-buffer, printed and bounded.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

# json FIELD FILE: the first value of "FIELD" in a pretty-printed stats JSON.
json() {
	sed -n "s/^  \"$1\": \\([0-9.]*\\),\$/\\1/p" "$2" | head -n 1
}

ncpu=$(grep -c '^processor' /proc/cpuinfo)

echo "--- 1: full load, per-CPU files"
rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=64 mode=lossless count=200000
dump_start /tmp/dump.err dump -o /tmp/out --stats-json /tmp/stats.json
cat /tmp/dump.err
# One mapping per CPU buffer: the consumer fds' (anon inode), none of debugfs.
maps=$(grep -c 'relaymap-consumer' "/proc/$pid/maps")
dbg=$(grep -c '/sys/kernel/debug' "/proc/$pid/maps")
echo "relaymap-dump maps $maps consumer buffers ($ncpu CPUs), $dbg debugfs files"
assert_eq "$maps" "$ncpu" "buffer mappings of relaymap-dump"
assert_eq "$dbg" 0 "debugfs mappings of relaymap-dump"
lg_start
lg_wait_idle 240
lg_status >/tmp/status
cat /tmp/status
kill -INT "$pid"
dump_wait "$pid" "" /tmp/dump.err
cat /tmp/dump.err
ls -l /tmp/out
relaymap-dump verify /tmp/out --loadgen-status /tmp/status >/tmp/verify.out
rc=$?
cat /tmp/verify.out
[ "$rc" = 0 ] || fail "verify exited $rc"
total=$(awk '$1 == "total" { print $5 }' /tmp/status)
grep -q "^verified $total records, 0 lost, 0 corrupt\$" /tmp/verify.out ||
	fail "verify: want $total records, 0 lost, 0 corrupt"
assert_eq "$(json records_dropped /tmp/stats.json)" 0 "records dropped by the kernel"
grep -q '"opened_by": "name"' /tmp/stats.json || fail "the stats do not say the channel was opened by name"
echo "full load: $(json control_ops /tmp/stats.json) control ioctls for $(json subbufs /tmp/stats.json) sub-buffers ($(json control_ops_per_subbuf /tmp/stats.json) per sub-buffer), $(json waits /tmp/stats.json) waits"
rm -rf /tmp/out
rm_unload

echo "--- 2: keeping up at 256 KiB sub-buffers"
# 40000 records/s per CPU of 128 bytes (5.1 MB/s, ~20 sub-buffers/s per
# CPU) for 3 s: the dumper waits for every sub-buffer. No periodic flush,
# so every sub-buffer but the drain's last ones is a full one.
rm_load name=dump subbuf_size=262144 n_subbufs=8
lg_load channel=dump record_size=128 mode=lossless rate=40000 count=120000
dump_start /tmp/k.err dump -o /tmp/k --flush-interval 0 --stats-json /tmp/k.json
lg_start
lg_wait_idle 120
lg_status >/tmp/ks
kill -INT "$pid"
dump_wait "$pid" "(keeping up)" /tmp/k.err
cat /tmp/k.err
check_verify /tmp/k --loadgen-status /tmp/ks
ops=$(json control_ops /tmp/k.json)
sbs=$(json subbufs /tmp/k.json)
echo "keeping up: $ops control ioctls for $sbs sub-buffers ($(json control_ops_per_subbuf /tmp/k.json) per sub-buffer), $(json waits /tmp/k.json) waits, $(json rounds /tmp/k.json) rounds"
[ "$sbs" -ge 100 ] || fail "only $sbs sub-buffers: too few to measure"
# Per sub-buffer one GET_CURSOR and one PUT_CONSUMED, plus a GET_INFO a
# second (hotplug) and the drain's FLUSHes and GET_CURSORS: under 2.5.
[ "$((ops * 10))" -le "$((sbs * 25))" ] || fail "$ops control ioctls for $sbs sub-buffers: more than 2.5 per sub-buffer"
rm_unload
echo "ok: $total records dumped and verified; one mapping per CPU; $ops ioctls for $sbs sub-buffers when keeping up"
