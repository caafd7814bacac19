#!/bin/sh
# SDK: clear errors, never a panic: the legacy debugfs view (a missing dir,
# a dir without a control file, a control file that is not relaymap's; a
# real channel's dir still opens), a CPU without a buffer, a name too
# long, and permission denied as nobody on /dev/relaymap (0600 root) and on
# the debugfs view, with a hint.
# timeout: 60
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=65536 n_subbufs=4
relaymap-vmtest errors --channel demo || { rm_unload; fail "errors"; }
rm_unload
