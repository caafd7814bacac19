#!/bin/sh
# Low rate + --flush-interval: partial sub-buffers reach the files while the
# loadgen still runs; merged stdout (`-o -`) verified; --rotate; --raw;
# read-copy (the read() baseline) through the consumer fds. The channel is
# opened by name; every start waits for the dumper's readiness line.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=dump subbuf_size=262144 n_subbufs=8

echo "--- low rate, --flush-interval 200ms"
# 200 records/s per CPU until stopped: far less than one 256 KiB sub-buffer
# in the time the test waits, so only the flushes bring records out.
lg_load channel=dump record_size=64 mode=lossless rate=200
dump_start /tmp/lr.err dump -o /tmp/lr --flush-interval 200ms
lg_start
# 6400 bytes = 100 records, on disk within 20 s while the loadgen runs.
_i=0
while :; do
	n=$(cat /tmp/lr/cpu*.out | wc -c)
	[ "$n" -lt 6400 ] || break
	_i=$((_i + 1))
	[ "$_i" -le 200 ] || fail "partial sub-buffers did not reach the files ($n bytes after 20 s)"
	sleep 0.1
done
echo "after $((_i / 10)).$((_i % 10)) s: $n bytes on disk"
lg_status | grep -q '^state running' || fail "the load generator stopped before the check"
lg_stop
lg_status >/tmp/s
kill -INT "$pid"
dump_wait "$pid" "" /tmp/lr.err
check_verify /tmp/lr --loadgen-status /tmp/s

echo "--- merged stdout"
rm_unload
rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=96 mode=lossless count=50000
DUMP_OUT=/tmp/merged.bin
dump_start /tmp/m.err dump -o -
DUMP_OUT=
lg_start
lg_wait_idle 120
lg_status >/tmp/s
kill -INT "$pid"
dump_wait "$pid" "with -o -" /tmp/m.err
cat /tmp/m.err
check_verify /tmp/merged.bin --loadgen-status /tmp/s
rm -f /tmp/merged.bin

echo "--- --rotate 1M"
rm_unload
rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=64 mode=lossless count=60000
dump_start /tmp/r.err dump -o /tmp/rot --rotate 1M
lg_start
lg_wait_idle 120
lg_status >/tmp/s
kill -INT "$pid"
dump_wait "$pid" "with --rotate" /tmp/r.err
ls -l /tmp/rot
[ -f /tmp/rot/cpu0.out.2 ] || fail "no rotated file cpu0.out.2"
for f in /tmp/rot/*; do
	[ "$(wc -c <"$f")" -le 1048576 ] || fail "$f is larger than 1M"
done
check_verify /tmp/rot --loadgen-status /tmp/s
rm -rf /tmp/rot

echo "--- --raw is byte-identical to records mode for framed data"
rm_unload
rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=64 mode=lossless count=20000
dump_start /tmp/raw.err dump -o /tmp/raw --raw
lg_start
lg_wait_idle 120
lg_status >/tmp/s
kill -INT "$pid"
dump_wait "$pid" "with --raw" /tmp/raw.err
check_verify /tmp/raw --loadgen-status /tmp/s

echo "--- read-copy: read() of each CPU's consumer fd"
rm_unload
rm_load name=dump subbuf_size=65536 n_subbufs=8
# 4000 x 64 bytes per CPU fit the 8 x 64 KiB buffer: no consumer needed.
lg_load channel=dump record_size=64 mode=lossless count=4000
lg_start
lg_wait_idle 60
relaymap-dump read-copy dump -o /tmp/rc --drain 2>/tmp/rc.err
rc=$?
cat /tmp/rc.err
[ "$rc" = 0 ] || fail "read-copy exited $rc"
grep -q '^read-copy: .* MB/s' /tmp/rc.err || fail "read-copy: no summary"
ls -l /tmp/rc
for f in /tmp/rc/cpu*.read; do
	# 3 of the 4 sub-buffers per CPU are closed (the 4th is open).
	[ "$(wc -c <"$f")" -ge 131072 ] || fail "$f: $(wc -c <"$f") bytes, want the closed sub-buffers"
done
rm_unload
echo "ok: flush interval, merged stream, rotation, raw, read-copy"
