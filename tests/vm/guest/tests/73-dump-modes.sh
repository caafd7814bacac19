#!/bin/sh
# Low rate + --flush-interval: partial sub-buffers reach the files while the
# loadgen still runs; merged stdout (`-o -`) verified; --rotate; --raw.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=dump subbuf_size=262144 n_subbufs=8

echo "--- low rate, --flush-interval 200ms"
lg_load channel=dump record_size=64 mode=lossless rate=200 duration_ms=3000
relaymap-dump "$(rm_dir dump)" -o /tmp/lr --flush-interval 200ms 2>/tmp/lr.err &
pid=$!
sleep 0.3
lg_start
sleep 1.5
# 1.5 s at 200 records/s: far less than one 256 KiB sub-buffer, yet on disk.
n=$(cat /tmp/lr/cpu*.out | wc -c)
echo "after 1.5 s: $n bytes on disk"
[ "$n" -ge 6400 ] || fail "partial sub-buffers did not reach the files ($n bytes)"
lg_wait_idle 120
lg_status >/tmp/s
kill -INT "$pid"
dump_wait "$pid" "" /tmp/lr.err
check_verify /tmp/lr --loadgen-status /tmp/s

echo "--- merged stdout"
rm_unload
rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=96 mode=lossless count=50000
relaymap-dump "$(rm_dir dump)" -o - >/tmp/merged.bin 2>/tmp/m.err &
pid=$!
sleep 0.3
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
relaymap-dump "$(rm_dir dump)" -o /tmp/rot --rotate 1M 2>/tmp/r.err &
pid=$!
sleep 0.3
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
relaymap-dump "$(rm_dir dump)" -o /tmp/raw --raw 2>/tmp/raw.err &
pid=$!
sleep 0.3
lg_start
lg_wait_idle 120
lg_status >/tmp/s
kill -INT "$pid"
dump_wait "$pid" "with --raw" /tmp/raw.err
check_verify /tmp/raw --loadgen-status /tmp/s
rm_unload
echo "ok: flush interval, merged stream, rotation, raw"
