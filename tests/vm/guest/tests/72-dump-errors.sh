#!/bin/sh
# relaymap-dump's error cases on the real module, each with its exit code
# and message: not a channel (3), permission denied with a root hint (4),
# unwritable output (5), disk full (6: stops consuming, the dump is a clean
# prefix, and the kernel then counts drops).
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

expect_rc() { # WANT GREP CMD...: run CMD, want exit WANT and GREP in its stderr
	_want=$1
	_grep=$2
	shift 2
	"$@" 2>/tmp/err >/dev/null
	_rc=$?
	cat /tmp/err
	[ "$_rc" = "$_want" ] || fail "$*: exit $_rc, want $_want"
	grep -qi -- "$_grep" /tmp/err || fail "$*: stderr lacks '$_grep'"
}

rm_load name=dump subbuf_size=16384 n_subbufs=8
dir=$(rm_dir dump)

echo "--- not a channel"
mkdir -p /tmp/empty
expect_rc 3 'not a relaymap channel' relaymap-dump /tmp/empty -o /tmp/o1
expect_rc 3 'not a relaymap channel' relaymap-dump /sys/kernel/debug -o /tmp/o1
expect_rc 3 'not a relaymap channel' relaymap-dump /nonexistent -o /tmp/o1

echo "--- permission denied"
mkdir -p /tmp/o2 && chmod 777 /tmp/o2
expect_rc 4 'run relaymap-dump as root' rmdump_dropuid 65534 65534 relaymap-dump "$dir" -o /tmp/o2

echo "--- unwritable output"
echo x >/tmp/afile
expect_rc 5 'cannot write output' relaymap-dump "$dir" -o /tmp/afile/sub
expect_rc 5 'cannot write output' relaymap-dump "$dir" -o /proc/nope

echo "--- disk full"
mkdir -p /tmp/small
mount -t tmpfs -o size=1m tmpfs /tmp/small || fail "mount a 1 MiB tmpfs"
lg_load channel=dump record_size=64 mode=lossless count=100000
relaymap-dump "$dir" -o /tmp/small 2>/tmp/full.err &
pid=$!
sleep 0.3
lg_start
wait "$pid"
rc=$?
cat /tmp/full.err
[ "$rc" = 6 ] || fail "disk full: exit $rc, want 6"
grep -q 'no space left' /tmp/full.err || fail "disk full: no 'no space left' message"
grep -q 'stopped consuming' /tmp/full.err || fail "disk full: does not say it stopped consuming"
# The loadgen (lossless) now waits for space that never comes.
sleep 0.5
[ "$(lg_stat written total)" -lt 200000 ] || fail "the loadgen finished: the dumper kept consuming"
lg_stop
# What reached the disk is whole records, seq 0.. without a gap.
relaymap-dump verify /tmp/small >/tmp/v.out
cat /tmp/v.out
grep -q ' 0 lost, 0 corrupt$' /tmp/v.out || fail "the disk-full dump is not a clean prefix"
# Nobody consumes now: a writer in drop mode is counted by the kernel.
lg_set mode drop
lg_set count 0
lg_set duration_ms 300
lg_start
sleep 1
lg_stop
d=$(lg_stat dropped total)
echo "kernel counted $d dropped records after the stop"
[ "$d" -gt 0 ] || fail "no drops counted after the dumper stopped consuming"
umount /tmp/small
rm_unload
echo "ok: every error case reported with its exit code"
