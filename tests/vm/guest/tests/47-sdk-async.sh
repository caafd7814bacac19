#!/bin/sh
# SDK: the tokio feature. One AsyncCpuReader per CPU, each awaited in its
# own task on a current-thread runtime, while lossless writers run at full
# speed: every record once, in order, counts equal to the load generator's.
# timeout: 300
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=65536 n_subbufs=8
lg_load count=100000 record_size=64 mode=lossless rate=0
relaymap-vmtest async --channel demo --timeout-s 240 || { lg_status; rm_unload; fail "async"; }
lg_status
rm_unload
