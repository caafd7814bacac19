#!/bin/sh
# SDK: lossless load generator at full speed on every CPU while the SDK
# consumer (Channel::open("demo") through /dev/relaymap, one CpuReader per
# CPU, one ReadySet) drains by batches: every record once, in order,
# checksums verified, no loss, counts equal to the load generator's and to
# the kernel's stats. Three write paths and record sizes (framing at
# several alignments), acquire(1) batches, and a load generator started at
# insmod (autostart=1) that the consumer only observes: the command the
# lockdown pass runs (--expect-from-loadgen).
# timeout: 400
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
for run in "api 64 200000 all" "reserve 200 100000 all" "__relay_write 1000 50000 all" "api 72 30000 1"; do
	# shellcheck disable=SC2086 # split "method size count limit" on purpose
	set -- $run
	echo "--- method $1, record_size $2, count $3, acquire limit $4"
	limit=
	[ "$4" = all ] || limit="--limit $4"
	rm_load subbuf_size=65536 n_subbufs=8
	lg_load count="$3" record_size="$2" mode=lossless rate=0 method="$1"
	# shellcheck disable=SC2086 # $limit is empty or two words
	relaymap-vmtest lossless --channel demo --timeout-s 120 $limit ||
		{ lg_status; rm_unload; fail "lossless ($1, $2 bytes, limit $4)"; }
	lg_status
	rm_unload
done
echo "--- autostart=1: the load generator runs before the consumer opens"
rm_load subbuf_size=65536 n_subbufs=8
lg_load count=50000 record_size=64 mode=lossless rate=0 autostart=1
relaymap-vmtest lossless --channel demo --expect-from-loadgen --timeout-s 120 ||
	{ lg_status; rm_unload; fail "lossless --expect-from-loadgen"; }
lg_status
rm_unload
