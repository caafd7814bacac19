#!/bin/sh
# SDK: drop mode against a tiny channel and a deliberately slow consumer:
# per CPU, the gaps the consumer sees == the reader's loss.records_dropped
# == the kernel's records_dropped == the load generator's dropped.
# timeout: 300
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=4096 n_subbufs=4
lg_load count=100000 record_size=64 mode=drop rate=0
relaymap-vmtest drops --channel demo --sleep-ms 2 --timeout-s 240 || { lg_status; rm_unload; fail "drops"; }
lg_status
rm_unload
