#!/bin/sh
# SDK: overwrite (flight recorder) mode with writers at full speed and a
# slow consumer: laps are detected, no torn copy is ever handed out (every
# record verifies, 0 corrupt), seqs increase, and every produced
# sub-buffer is delivered or counted as lapped.
# timeout: 300
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=4096 n_subbufs=4 overwrite=1
lg_load count=100000 record_size=64 mode=drop rate=0
relaymap-vmtest overwrite --channel demo --sleep-ms 1 --timeout-s 240 || { lg_status; rm_unload; fail "overwrite"; }
lg_status
rm_unload
