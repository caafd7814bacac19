#!/bin/sh
# The quick-start programs on the real module, by channel name: tail-records
# prints load generator records as they arrive; flight-recorder snapshots
# an overwrite channel (the newest sub-buffers of every CPU) into a file.
# Both print errors as sentences and answer --help.
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

echo "--- --help and errors"
tail-records --help >/tmp/h.out || fail "tail-records --help exited $?"
grep -q '^usage: tail-records' /tmp/h.out || fail "tail-records --help: no usage"
flight-recorder --help >/tmp/h.out || fail "flight-recorder --help exited $?"
grep -q '^usage: flight-recorder' /tmp/h.out || fail "flight-recorder --help: no usage"
tail-records nope 2>/tmp/e.out && fail "tail-records on a missing channel exited 0"
cat /tmp/e.out
grep -q 'module is not loaded' /tmp/e.out || fail "tail-records: no 'module is not loaded' message"
grep -Eq 'ModuleNotLoaded|[{]' /tmp/e.out && fail "tail-records printed a Debug form"

echo "--- tail-records"
rm_load name=demo subbuf_size=16384 n_subbufs=4
lg_load channel=demo record_size=64 rate=100 duration_ms=1500
tail-records demo >/tmp/tail.out 2>/tmp/tail.err &
pid=$!
wait_line /tmp/tail.err '^demo: consuming ' 30 "$pid"
lg_start
lg_wait_idle 30
# 1.5 s at 100 records/s per CPU: 150 per CPU, shown within a flush or two.
_i=0
until [ "$(grep -c 'loadgen seq .* fill bytes ok' /tmp/tail.out)" -ge "$(lg_stat written total)" ]; do
	_i=$((_i + 1))
	[ "$_i" -le 100 ] || break
	sleep 0.1
done
kill "$pid"
wait "$pid"
head -n 3 /tmp/tail.out
cat /tmp/tail.err
n=$(grep -c 'loadgen seq .* fill bytes ok' /tmp/tail.out)
echo "$n records printed, $(lg_stat written total) written"
assert_eq "$n" "$(lg_stat written total)" "records printed by tail-records"
grep -q 'BAD CHECKSUM' /tmp/tail.out && fail "tail-records saw a bad checksum"
rm_unload

echo "--- flight-recorder"
rm_load name=demo subbuf_size=16384 n_subbufs=4 overwrite=1
lg_load channel=demo record_size=64 duration_ms=1000
lg_start
lg_wait_idle 30
flight-recorder demo /tmp/snap.bin >/tmp/fr.out 2>&1 || { cat /tmp/fr.out; fail "flight-recorder"; }
cat /tmp/fr.out
size=$(wc -c </tmp/snap.bin)
# Up to n_subbufs - 1 = 3 sub-buffers per CPU survive a lap.
[ "$size" -gt 16384 ] || fail "snapshot has $size bytes, want more than one sub-buffer"
relaymap-dump verify /tmp/snap.bin >/tmp/v.out
cat /tmp/v.out
grep -q ' 0 corrupt$' /tmp/v.out || fail "snapshot has corrupt records"
rm_unload
echo "ok: quick-start programs"
