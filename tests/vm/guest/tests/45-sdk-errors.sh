#!/bin/sh
# SDK: clear errors, never a panic: a missing dir, a dir without a control
# file, a control file that is not relaymap's, a CPU without a buffer, and
# permission denied (as nobody) with a hint about root/file modes.
# timeout: 60
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=65536 n_subbufs=4
relaymap-vmtest errors || { rm_unload; fail "errors"; }
rm_unload
