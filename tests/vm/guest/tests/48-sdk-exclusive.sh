#!/bin/sh
# SDK: consuming is exclusive per CPU. While this process holds every CPU
# and consumes, a second channel in the same process and a second process
# get Error::Busy naming the holder's pid and comm (observers still work),
# and the holder loses nothing. Dropping a reader releases its claim, and so
# does a process that exits holding one. Then two threads, each with the
# reader of one CPU, consume at once, with their first batches alive
# together; every record once.
# timeout: 300
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
rm_load subbuf_size=65536 n_subbufs=8
lg_load count=100000 record_size=64 mode=lossless rate=0
relaymap-vmtest exclusive --channel demo --timeout-s 240 || { lg_status; rm_unload; fail "exclusive"; }
lg_status
rm_unload
