#!/bin/sh
# SDK: a slow writer (200 records/s per CPU into 256 KiB sub-buffers that
# would take ~20 s to fill): records become visible while it runs only
# through flushes (every such sub-buffer FLUSHED and partial); nothing is
# lost; one batch per CPU held together merges in timestamp order.
# timeout: 120
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=262144 n_subbufs=8
lg_load record_size=64 mode=lossless rate=200 duration_ms=3000
relaymap-vmtest flush --channel demo --timeout-s 90 || { lg_status; rm_unload; fail "flush"; }
lg_status
rm_unload
