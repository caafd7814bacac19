#!/bin/sh
# SDK: the tokio feature. AsyncChannel awaits data from the real relay
# files (the channel's epoll fd in tokio's reactor) while lossless writers
# run at full speed: every record once, in order.
# timeout: 300
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=65536 n_subbufs=8
lg_load count=100000 record_size=64 mode=lossless rate=0
relaymap-vmtest async --timeout-s 240 || { lg_status; rm_unload; fail "async"; }
lg_status
rm_unload
