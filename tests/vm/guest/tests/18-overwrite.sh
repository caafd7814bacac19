#!/bin/sh
# Overwrite (flight-recorder) mode, 16 KiB x 4: a writer that nobody reads
# laps the ring; the reader detects laps through seq and the
# copy-then-validate protocol; kernel subbufs_lapped == sub-buffers skipped
# (static), K <= lapped <= K + accepted (live); no torn copy accepted;
# the stream ends at the loadgen's last record; racing the writer for the
# sub-buffer it overwrites next, the re-check rejects changed copies and no
# accepted copy is torn.
# timeout: 200
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=ow subbuf_size=16384 n_subbufs=4 overwrite=1
lg_load channel=ow
rmck_overwrite -n ow --static-ms 1500 --live-ms 4000 --race-ms 3000 || fail "rmck_overwrite"
rm_unload
echo "ok: overwrite mode laps detected and accounted, no torn copy accepted"
