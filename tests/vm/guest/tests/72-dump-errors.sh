#!/bin/sh
# relaymap-dump's (and relaymap's) error cases on the real module, each with
# its exit code and a message that names the real cause: no such channel,
# listing the channels (3); a directory that is not a channel (3); debugfs
# not mounted for a debugfs path (3), while the name still works; not in
# the device's group (4, naming the group, no hint to change file modes);
# the module not loaded (3); unwritable output (5); disk full (6: stops
# consuming, the dump is a clean prefix, and the kernel then counts drops).
# (A held channel, 8, is 76-dump-exclusive; lockdown is the 9x pass.)
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
	! grep -qi 'file mode' /tmp/err || fail "$*: stderr suggests changing file modes"
}

rm_load name=dump subbuf_size=16384 n_subbufs=8

echo "--- no such channel: the message lists the channels"
expect_rc 3 'no relaymap channel named "nope" (channels: dump)' relaymap-dump nope -o /tmp/o1
expect_rc 3 'no relaymap channel named "nope"' relaymap stat nope
expect_rc 3 'no relaymap channel named "nope"' relaymap-dump read-copy nope -o /tmp/o1

echo "--- not a channel directory"
mkdir -p /tmp/empty
expect_rc 3 'not a relaymap channel' relaymap-dump /tmp/empty -o /tmp/o1
expect_rc 3 'not a relaymap channel' relaymap-dump /nonexistent/dir -o /tmp/o1

echo "--- not in the device's group"
mkdir -p /tmp/o2 && chmod 777 /tmp/o2
expect_rc 4 'permission denied' rmdump_dropuid 65534 65534 relaymap-dump dump -o /tmp/o2
grep -q 'group' /tmp/err || fail "the permission error does not name the device's group"
expect_rc 4 'permission denied' rmdump_dropuid 65534 65534 relaymap list
# debugfs itself is 0700: a path there is refused to non-root as well.
expect_rc 4 'permission denied' rmdump_dropuid 65534 65534 relaymap-dump "$(rm_dir dump)" -o /tmp/o2
grep -q "give the channel's name (dump)" /tmp/err || fail "the debugfs refusal does not point at the name"

echo "--- debugfs not mounted: a debugfs path fails, the name works"
# Mounted again on any exit: the load generator's control file lives there.
trap 'grep -q " /sys/kernel/debug " /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug' EXIT
umount /sys/kernel/debug || fail "umount /sys/kernel/debug"
expect_rc 3 'debugfs is not mounted' relaymap-dump /sys/kernel/debug/relaymap/dump -o /tmp/o1
relaymap-dump dump -o /tmp/o3 --duration 0 2>/tmp/err || { cat /tmp/err; fail "by name without debugfs"; }
grep -q '^relaymap-dump: dump (records)' /tmp/err || { cat /tmp/err; fail "no summary by name without debugfs"; }
relaymap list >/tmp/list.out 2>&1 || { cat /tmp/list.out; fail "relaymap list without debugfs"; }
cat /tmp/list.out
mount -t debugfs debugfs /sys/kernel/debug || fail "mount debugfs again"

echo "--- unwritable output"
echo x >/tmp/afile
expect_rc 5 'cannot write output' relaymap-dump dump -o /tmp/afile/sub
expect_rc 5 'cannot write output' relaymap-dump dump -o /proc/nope

echo "--- disk full"
mkdir -p /tmp/small
mount -t tmpfs -o size=1m tmpfs /tmp/small || fail "mount a 1 MiB tmpfs"
lg_load channel=dump record_size=64 mode=lossless count=100000
dump_start /tmp/full.err dump -o /tmp/small
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
lg_wait_idle 30
d=$(lg_stat dropped total)
echo "kernel counted $d dropped records after the stop"
[ "$d" -gt 0 ] || fail "no drops counted after the dumper stopped consuming"
relaymap stat dump
umount /tmp/small

echo "--- module not loaded"
rm_unload
expect_rc 3 'module is not loaded' relaymap-dump dump -o /tmp/o1
expect_rc 3 'module is not loaded' relaymap list
echo "ok: every error case reported with its cause and exit code"
