#!/bin/sh
# C API from C++, static library: the C++ consumer (examples/c/consumer.cpp:
# RAII wrapper relaymap.hpp, one sub-buffer at a time with
# relaymap_channel_next, views handed back by their destructors; linked
# statically by build.d/60-ffi.sh) reads while the load generator writes a
# fixed count per CPU. Lossless: record counts per CPU and in total equal
# the load generator's `written`, all verified, nothing dropped. Drop mode:
# received = `written`, loss.records_dropped = `dropped`.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

ffi_run relaymap-consumer-cpp lossless 50000 16384 8
ffi_run relaymap-consumer-cpp drop 20000 4096 2
echo "ok: C++ consumer counts equal the load generator's"
