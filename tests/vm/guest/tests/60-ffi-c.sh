#!/bin/sh
# C API, shared library: the C consumer (examples/c/consumer.c: batches,
# every CPU, one poll; built against librelaymap.so by build.d/60-ffi.sh)
# reads while the load generator writes a fixed count per CPU. Lossless
# (16 KiB x 8, full speed): its record counts, per CPU and in total, equal
# the load generator's `written`, every record verifies (checksum, fill, seq
# order), nothing dropped. Drop mode (4 KiB x 2): received = `written` and
# its loss.records_dropped = the load generator's `dropped`.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

ffi_run relaymap-consumer lossless 100000 16384 8
ffi_run relaymap-consumer drop 20000 4096 2
echo "ok: C consumer counts equal the load generator's"
