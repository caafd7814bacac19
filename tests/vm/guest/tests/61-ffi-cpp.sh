#!/bin/sh
# C API from C++, static library: the C++ consumer (examples/c/consumer.cpp:
# RAII wrapper relaymap.hpp, the channel opened by name through
# /dev/relaymap, one thread per CPU reader taking one sub-buffer at a time
# with relaymap_reader_next (acquire of one), each handed back by its
# destructor; linked statically by build.d/60-ffi.sh) reads while the load
# generator writes a fixed count per CPU. Lossless: record counts per CPU
# and in total equal the load generator's `written`, all verified, nothing
# dropped. Drop mode: received = `written`, loss.records_dropped =
# `dropped`. A second C++ consumer of the held CPUs exits 3 with
# RELAYMAP_ERR_BUSY naming the holder's pid.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

ffi_run relaymap-consumer-cpp lossless 50000 16384 8
ffi_run relaymap-consumer-cpp drop 20000 4096 2

echo "--- a second consumer of the held CPUs"
rm_load name=ffi subbuf_size=16384 n_subbufs=8
lg_load channel=ffi count=5000 mode=lossless
ffi_start relaymap-consumer-cpp ./out.first --name ffi
first=$pid
rc=0
relaymap-consumer-cpp --name ffi >./out.second 2>&1 || rc=$?
sed 's/^/  /' ./out.second
assert_eq "$rc" 3 "second consumer's exit status (3: a CPU is held)"
grep -q 'RELAYMAP_ERR_BUSY' ./out.second || fail "second consumer: no RELAYMAP_ERR_BUSY"
grep -q "held by pid $first (" ./out.second ||
	fail "the busy message does not name the holder (pid $first)"
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
echo "ok: C++ consumer counts equal the load generator's; a second consumer gets RELAYMAP_ERR_BUSY naming pid $first"
