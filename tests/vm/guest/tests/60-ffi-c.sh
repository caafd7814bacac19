#!/bin/sh
# C API, shared library: the C consumer (examples/c/consumer.c: a channel
# opened by name through /dev/relaymap, one reader per CPU, one poll over
# all readers, a batch per ready CPU; built against librelaymap.so by
# build.d/60-ffi.sh) reads while the load generator writes a fixed count
# per CPU. Lossless (16 KiB x 8, full speed): its record counts, per CPU
# and in total, equal the load generator's `written`, every record verifies
# (checksum, fill, seq order), nothing dropped. Drop mode (4 KiB x 2):
# received = `written` and its loss.records_dropped = the load generator's
# `dropped`. Exclusive CPUs: a second consumer started while the first
# holds the channel exits 3 with RELAYMAP_ERR_BUSY naming the first one's
# pid and comm, and the first still receives every record. A name that
# does not exist is RELAYMAP_ERR_NO_SUCH_CHANNEL, listing the channels.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

ffi_run relaymap-consumer lossless 100000 16384 8
ffi_run relaymap-consumer drop 20000 4096 2

echo "--- a second consumer of the held CPUs"
rm_load name=ffi subbuf_size=16384 n_subbufs=8
lg_load channel=ffi count=20000 mode=lossless
ffi_start relaymap-consumer ./out.first --name ffi
first=$pid
rc=0
relaymap-consumer --name ffi >./out.second 2>&1 || rc=$?
sed 's/^/  /' ./out.second
assert_eq "$rc" 3 "second consumer's exit status (3: a CPU is held)"
grep -q 'RELAYMAP_ERR_BUSY' ./out.second || fail "second consumer: no RELAYMAP_ERR_BUSY"
# comm is TASK_COMM_LEN - 1 = 15 characters of "relaymap-consumer".
grep -q "held by pid $first (relaymap-consum)" ./out.second ||
	fail "the busy message does not name the holder (pid $first, relaymap-consum)"
rc=0
relaymap-consumer --name nosuch >./out.nosuch 2>&1 || rc=$?
sed 's/^/  /' ./out.nosuch
assert_eq "$rc" 1 "consumer of a channel that does not exist: exit status"
grep -q 'RELAYMAP_ERR_NO_SUCH_CHANNEL' ./out.nosuch || fail "no RELAYMAP_ERR_NO_SUCH_CHANNEL"
grep -q 'ffi' ./out.nosuch || fail "the no-such-channel message does not list channel ffi"
lg_start
lg_wait_idle 240
kill -TERM "$first"
rc=0
wait "$first" || rc=$?
sed 's/^/  /' ./out.first
assert_eq "$rc" 0 "first consumer's exit status"
assert_eq "$(awk '$1 == "total" { print $3 }' ./out.first)" "$(lg_stat written total)" \
	"first consumer: records received vs load generator written"
lg_stop
rm_unload
echo "ok: C consumer counts equal the load generator's; a second consumer gets RELAYMAP_ERR_BUSY naming pid $first"
