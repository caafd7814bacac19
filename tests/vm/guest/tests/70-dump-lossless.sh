#!/bin/sh
# relaymap-dump against the real module at full load: the load generator
# writes 200000 records per CPU at full speed (lossless mode: it waits for
# space), relaymap-dump writes per-CPU files; after the loadgen finished,
# SIGINT makes it flush, drain and exit 0. `relaymap-dump verify` then
# checks every record byte-exact (checksum + fill pattern), per-CPU seq
# continuity from 0, and received == loadgen written per CPU.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=dump subbuf_size=65536 n_subbufs=8
lg_load channel=dump record_size=64 mode=lossless count=200000
relaymap-dump "$(rm_dir dump)" -o /tmp/out --stats-json /tmp/stats.json 2>/tmp/dump.err &
pid=$!
sleep 0.5
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
grep -m1 '"records_dropped"' /tmp/stats.json | grep -q ': 0,' || fail "kernel dropped records"
rm_unload
echo "ok: $total records dumped and verified"
