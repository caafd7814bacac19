#!/bin/sh
# SDK: lossless load generator at full speed on every CPU while the SDK
# consumer waits and drains by batches: every record once, in order,
# checksums verified, no loss, counts equal to the load generator's.
# Three write paths and record sizes (framing at several alignments).
# timeout: 400
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
for run in "api 64 200000" "reserve 200 100000" "__relay_write 1000 50000"; do
	# shellcheck disable=SC2086 # split "method size count" on purpose
	set -- $run
	echo "--- method $1, record_size $2, count $3"
	rm_load subbuf_size=65536 n_subbufs=8
	lg_load count="$3" record_size="$2" mode=lossless rate=0 method="$1"
	relaymap-vmtest lossless --timeout-s 120 || { lg_status; rm_unload; fail "lossless ($1, $2 bytes)"; }
	lg_status
	rm_unload
done
