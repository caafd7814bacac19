#!/bin/sh
# SDK: a consumer is dropped mid-stream (after single sub-buffers and a
# partly released batch) and a new one is opened: it starts exactly at the
# kernel's consumed count, and the two together see every record once.
# timeout: 300
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=16384 n_subbufs=8
lg_load count=100000 record_size=64 mode=lossless rate=0
relaymap-vmtest resume --timeout-s 240 || { lg_status; rm_unload; fail "resume"; }
lg_status
rm_unload
