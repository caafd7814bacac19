#!/bin/sh
# The quick-start programs on the real module: tail-records prints load
# generator records as they arrive; flight-recorder snapshots an overwrite
# channel (the newest sub-buffers of every CPU) into a file.
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

echo "--- tail-records"
rm_load name=demo subbuf_size=16384 n_subbufs=4
lg_load channel=demo record_size=64 rate=100 duration_ms=1500
tail-records "$(rm_dir demo)" >/tmp/tail.out 2>/tmp/tail.err &
pid=$!
sleep 0.3
lg_start
sleep 3.5
kill "$pid"
wait "$pid"
head -n 3 /tmp/tail.out
cat /tmp/tail.err
n=$(grep -c 'loadgen seq .* fill bytes ok' /tmp/tail.out)
echo "$n records printed"
[ "$n" -ge 100 ] || fail "tail-records printed $n records, want >= 100"
grep -q 'BAD CHECKSUM' /tmp/tail.out && fail "tail-records saw a bad checksum"
rm_unload

echo "--- flight-recorder"
rm_load name=demo subbuf_size=16384 n_subbufs=4 overwrite=1
lg_load channel=demo record_size=64 duration_ms=1000
lg_start
sleep 1.5
lg_stop
flight-recorder "$(rm_dir demo)" /tmp/snap.bin >/tmp/fr.out 2>&1 || { cat /tmp/fr.out; fail "flight-recorder"; }
cat /tmp/fr.out
size=$(wc -c </tmp/snap.bin)
# Up to n_subbufs - 1 = 3 sub-buffers per CPU survive a lap.
[ "$size" -gt 16384 ] || fail "snapshot has $size bytes, want more than one sub-buffer"
relaymap-dump verify /tmp/snap.bin >/tmp/v.out
cat /tmp/v.out
grep -q ' 0 corrupt$' /tmp/v.out || fail "snapshot has corrupt records"
rm_unload
echo "ok: quick-start programs"
