#!/bin/sh
# SDK: a slow writer (200 records/s per CPU into 256 KiB sub-buffers that
# would take ~20 s to fill): records become visible while it runs only
# through flushes; nothing is lost; drain_merged keeps timestamp order.
# timeout: 120
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=262144 n_subbufs=8
lg_load record_size=64 mode=lossless rate=200 duration_ms=3000
relaymap-vmtest flush --timeout-s 90 || { lg_status; rm_unload; fail "flush"; }
lg_status
rm_unload
