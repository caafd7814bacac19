#!/bin/sh
# Two relaymap-dump processes started together on one channel: consuming is
# exclusive per CPU and the dumper claims every CPU at once (all or
# nothing), so exactly one runs; the other exits 8 at once with a message
# naming the CPU and the holder (pid and comm of the one that runs). The
# load generator then writes a fixed count; the running dumper's dump
# verifies with 0 lost against the loadgen's status (the loser took
# nothing), and the kernel's cursors show it handed back everything.
# Also: while it runs, `relaymap stat` shows it as the holder of every CPU,
# and a third dumper, a read-copy and a tail-records are refused the same way.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=ex subbuf_size=65536 n_subbufs=8
lg_load channel=ex record_size=128 mode=lossless count=100000

relaymap-dump ex -o /tmp/a 2>/tmp/a.err &
pa=$!
relaymap-dump ex -o /tmp/b 2>/tmp/b.err &
pb=$!
# One of them exits (busy), the other says it consumes.
_i=0
while proc_alive "$pa" && proc_alive "$pb"; do
	_i=$((_i + 1))
	[ "$_i" -le 300 ] || { cat /tmp/a.err /tmp/b.err; fail "both dumpers still run after 30 s"; }
	sleep 0.1
done
if proc_alive "$pa"; then
	win=$pa loser=$pb we=/tmp/a.err le=/tmp/b.err out=/tmp/a
else
	win=$pb loser=$pa we=/tmp/b.err le=/tmp/a.err out=/tmp/b
fi
wait "$loser"
rc=$?
echo "winner pid $win, loser pid $loser exited $rc:"
cat "$le"
assert_eq "$rc" 8 "exit code of the dumper that lost"
grep -Eq "^relaymap-dump: channel ex: cpu [0-9]+ is held by pid $win \\(relaymap-dump\\): only one consumer per CPU; " "$le" ||
	fail "the busy message does not name the CPU and the holder (pid $win, relaymap-dump)"
wait_line "$we" '^relaymap-dump: consuming ' 60 "$win"
proc_alive "$win" || fail "the winner is not running"

echo "--- the holder, seen by relaymap stat"
relaymap stat ex | tee /tmp/stat.out
ncpu=$(grep -c '^processor' /proc/cpuinfo)
assert_eq "$(grep -c "pid $win (relaymap-dump)\$" /tmp/stat.out)" "$ncpu" "CPUs held by the winner in relaymap stat"

echo "--- later consumers are refused too, and take nothing"
relaymap-dump ex -o /tmp/c 2>/tmp/c.err
assert_eq "$?" 8 "exit code of a third dumper"
cat /tmp/c.err
relaymap-dump read-copy ex -o /tmp/rc --drain 2>/tmp/rc.err
assert_eq "$?" 8 "exit code of read-copy"
grep -q "is held by pid $win (relaymap-dump)" /tmp/rc.err || { cat /tmp/rc.err; fail "read-copy: no busy message"; }
tail-records ex >/dev/null 2>/tmp/tr.err && fail "tail-records ran on a held channel"
cat /tmp/tr.err
grep -q "held by pid $win (relaymap-dump)" /tmp/tr.err || fail "tail-records: no busy message"

echo "--- the winner's dump is complete"
lg_start
lg_wait_idle 240
lg_status >/tmp/status
kill -INT "$win"
dump_wait "$win" "(the winner)" "$we"
cat "$we"
relaymap-dump verify "$out" --loadgen-status /tmp/status >/tmp/verify.out
rc=$?
cat /tmp/verify.out
[ "$rc" = 0 ] || fail "verify exited $rc"
total=$(awk '$1 == "total" { print $5 }' /tmp/status)
grep -q "^verified $total records, 0 lost, 0 corrupt\$" /tmp/verify.out ||
	fail "verify: want $total records, 0 lost, 0 corrupt"
relaymap stat ex --json >/tmp/stat.json
cat /tmp/stat.json
grep -q '"holder_pid": null' /tmp/stat.json || fail "a CPU is still held after the winner exited"
grep -q '"pending": [1-9]' /tmp/stat.json && fail "sub-buffers left unconsumed"
rm_unload
echo "ok: two dumpers at once: one ran ($total records, 0 lost), the other exited 8 naming pid $win"
