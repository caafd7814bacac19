#!/bin/sh
# SDK: acquire(1) in a loop costs O(1) control calls per sub-buffer: at
# most 2 per sub-buffer while a faster writer streams (the reader pauses
# 2 ms per wakeup so that several sub-buffers are ready; the figure of a
# rate-limited writer the reader keeps up with is reported too), and
# draining K ready sub-buffers costs K hand-backs plus a constant (<= 2)
# that does not grow from K = 4 to K = 48. Batches of every CPU alive
# together hand nothing back until dropped. Channel::cursors() is one
# control call.
# timeout: 300
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=4096 n_subbufs=64
lg_load count=30000 record_size=64 mode=lossless rate=0
relaymap-vmtest batches --channel demo --sleep-ms 2 --timeout-s 240 || { lg_status; rm_unload; fail "batches"; }
lg_status
rm_unload
