#!/bin/sh
# The relaymap CLI on the real module: `relaymap list` (channels, geometry,
# mode, CPUs, ABI version; --json) and `relaymap stat NAME` (per CPU
# produced/consumed/pending/dropped/rejected/lapped and the holder; --json).
# Observers only: they run while a dumper consumes and never claim a CPU.
# Drops are visible without consuming: a drop-mode load into a channel
# nobody consumes shows in `stat`, and equals the load generator's count.
# timeout: 180
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

ncpu=$(grep -c '^processor' /proc/cpuinfo)
rm_load name=cli subbuf_size=16384 n_subbufs=4

echo "--- relaymap list"
relaymap list | tee /tmp/list.out
grep -q '^/dev/relaymap: relaymap ABI 2 (1 channel)$' /tmp/list.out || fail "list: no ABI line"
grep -Eq '^cli +no-overwrite +4 x 16 KiB +64 KiB +0-' /tmp/list.out || fail "list: no row for cli"
relaymap list --json | tee /tmp/list.json
grep -q '"abi_version": 2' /tmp/list.json || fail "list --json: no abi_version"
grep -q '"name": "cli"' /tmp/list.json || fail "list --json: no channel cli"
grep -q '"subbuf_size": 16384' /tmp/list.json || fail "list --json: no subbuf_size"

echo "--- relaymap stat: drops seen without consuming"
lg_load channel=cli record_size=64 mode=drop duration_ms=500
lg_start
lg_wait_idle 30
lg_status
relaymap stat cli | tee /tmp/stat.out
relaymap stat cli --json >/tmp/stat.json
dropped=$(sed -n 's/^      "dropped": \([0-9]*\),$/\1/p' /tmp/stat.json | awk '{ s += $1 } END { print s + 0 }')
assert_eq "$dropped" "$(lg_stat dropped total)" "dropped in relaymap stat vs the load generator"
[ "$dropped" -gt 0 ] || fail "a drop-mode load into 4 x 16 KiB nobody consumes dropped nothing"
assert_eq "$(grep -c '"holder_pid": null' /tmp/stat.json)" "$ncpu" "CPUs without a holder"
rm_unload

echo "--- stat while a dumper runs; list never claims"
rm_load name=cli subbuf_size=65536 n_subbufs=8
dump_start /tmp/d.err cli -o /tmp/d
relaymap list >/dev/null || fail "relaymap list while a dumper runs"
relaymap stat cli --json >/tmp/stat.json || fail "relaymap stat while a dumper runs"
assert_eq "$(grep -c "\"holder_pid\": $pid," /tmp/stat.json)" "$ncpu" "CPUs held by the dumper"
assert_eq "$(grep -c '"holder_comm": "relaymap-dump"' /tmp/stat.json)" "$ncpu" "holder comm"
kill -INT "$pid"
dump_wait "$pid" "" /tmp/d.err
rm_unload
echo "ok: relaymap list and stat"
