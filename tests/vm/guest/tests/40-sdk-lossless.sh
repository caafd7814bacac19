#!/bin/sh
# SDK: lossless load generator at full speed on every CPU while the SDK
# consumer waits and drains by batches: every record once, in order,
# checksums verified, no loss, counts equal to the load generator's.
# timeout: 300
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=65536 n_subbufs=8
lg_load count=200000 record_size=64 mode=lossless rate=0
relaymap-vmtest lossless --timeout-s 240 || { lg_status; rm_unload; fail "lossless"; }
lg_status
rm_unload
