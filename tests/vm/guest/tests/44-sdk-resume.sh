#!/bin/sh
# SDK: readers are dropped mid-stream (after acquire(1) singles and a
# partly released batch; then after singles and a kept batch) and claimed
# again, from the same channel and from a new Channel::open: each time the
# kernel's consumed count and the first sub-buffer delivered are exactly
# what was handed back, and all together see every record once.
# timeout: 300
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=16384 n_subbufs=8
lg_load count=100000 record_size=64 mode=lossless rate=0
relaymap-vmtest resume --channel demo --timeout-s 240 || { lg_status; rm_unload; fail "resume"; }
lg_status
rm_unload
