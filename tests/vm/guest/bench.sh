#!/bin/sh
# `tests/vm/run bench`: relaymap against the BPF ring buffer, side by side in
# one boot (tests/vm/bench/README.md has the setup, the fairness rules and
# the measured tables).
#
# Per point (record payload 16, 64, 256, 1024 B x 1 and 2 producers), in
# each of ROUNDS rounds, one run of each side, interleaved:
#   rm        relaymap: rmbench_writer.ko (relaymap_write() from a kthread per
#             producer CPU, drop mode) drained by rmbench_rm (the ABI in C,
#             zero copy; sub-buffers handed back after each CPU's whole batch,
#             every CPU's cursor asked after each wakeup)
#   rm-ready  the same, cursors asked only of the CPUs poll() reported (lever)
#   rm-each   the same as rm-ready, each sub-buffer handed back as soon as it is
#             summed (lever)
#   rm-cursors  as rm, but every CPU's cursor in one GET_CURSORS call on the
#             channel fd after each wakeup (lever)
#   bpf       rmbench_bpf: SEC("syscall") bpf_loop() over bpf_ringbuf_output()
#             from a pinned thread per producer CPU, libbpf ring_buffer__poll(),
#             default wakeups
#   bpf-wake  the same with BPF_RB_NO_WAKEUP and a forced wakeup every 256 KiB
#             (one relaymap sub-buffer's worth of bytes)
#   perf      the perf buffer: the same loop over bpf_perf_event_output() in a
#             raw_tp program (test run on the producer's CPU), 2 MiB per CPU,
#             libbpf perf_buffer__poll(), one wakeup per record (libbpf's default)
# Producers: 1 = CPU 1; 2 = CPUs 0 and 1. The reader is pinned to CPU 0. Both
# readers add up every payload byte with the same bench_sum() (sum.o).
# Buffers: relaymap 8 x 256 KiB per CPU; BPF one ring of 2 MiB per producer.
# Printed per point and side: medians of delivered records/s, payload MB/s,
# drop %, reader CPU-seconds per million records; last line `ratios: ...`.
# Kernel command line knobs: rmbench.rounds=N (default 5), rmbench.secs=S
# (seconds per run, default 1).
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

ROUNDS=5 SECS=1
read -r cmdline </proc/cmdline
# shellcheck disable=SC2086 # the words of the command line
for a in $cmdline; do
	case $a in
	rmbench.rounds=*) ROUNDS=${a#*=} ;;
	rmbench.secs=*) SECS=${a#*=} ;;
	esac
done
SIZES="16 64 256 1024"
PRODS="1 2"
SIDES="rm rm-ready rm-each rm-cursors bpf bpf-wake perf"
WAKE_BYTES=262144
WP=/sys/module/rmbench_writer/parameters
RES=/tmp/bench.results

say() { echo "bench: $*"; }
ncpu=$(grep -c '^processor' /proc/cpuinfo)
[ "$ncpu" -ge 2 ] || fail "needs 2 CPUs, the VM has $ncpu"
for b in rmbench_rm rmbench_bpf; do
	command -v "$b" >/dev/null || fail "$b is not in the initramfs (build.d/80-bench.sh)"
done
[ -f /relaymap/kmod/rmbench_writer.ko ] || fail "rmbench_writer.ko is not in the initramfs"

say "kernel $(uname -r), $ncpu CPUs (QEMU TCG, shared host: figures are noisy, compare within this boot)"
say "$ROUNDS rounds x $(echo "$SIZES" | wc -w) payloads x $(echo "$PRODS" | wc -w) producer counts x $(echo "$SIDES" | wc -w) sides, ${SECS} s per run, interleaved"
rm_load name=bench subbuf_size=262144 n_subbufs=8
insmod /relaymap/kmod/rmbench_writer.ko channel=bench || fail "insmod rmbench_writer.ko"
: >"$RES"

run_one() { # SIDE PRODUCERS PAYLOAD ROUND
	_mask=2
	[ "$2" = 1 ] || _mask=3
	case $1 in
	rm*)
		if ! { echo "$3" >"$WP/payload" && echo "$_mask" >"$WP/cpus" &&
			echo $((SECS * 1000)) >"$WP/duration_ms"; }; then
			fail "set rmbench_writer parameters"
		fi
		case $1 in
		rm) _o="--put batch --query all" ;;
		rm-ready) _o="--put batch --query ready" ;;
		rm-each) _o="--put each --query ready" ;;
		rm-cursors) _o="--put batch --query cursors" ;;
		esac
		# shellcheck disable=SC2086 # options
		rmbench_rm bench "$2" "$3" $_o >/tmp/run.out 2>&1
		;;
	bpf) rmbench_bpf "$2" "$3" "$SECS" 0 >/tmp/run.out 2>&1 ;;
	bpf-wake) rmbench_bpf "$2" "$3" "$SECS" "$WAKE_BYTES" >/tmp/run.out 2>&1 ;;
	perf) rmbench_bpf "$2" "$3" "$SECS" perf >/tmp/run.out 2>&1 ;;
	esac
	_rc=$?
	if [ "$_rc" != 0 ] || ! grep -q '^result ' /tmp/run.out; then
		cat /tmp/run.out
		fail "$1 producers=$2 payload=$3: exit $_rc"
	fi
	# The programs name their side coarsely: name it after the variant.
	sed -e "s/^result side=[^ ]*/result side=$1/" -e "s/^detail side=[^ ]*/detail side=$1 prod=$2 payload=$3/" \
		-e "s/\$/ round=$4/" /tmp/run.out | grep -E '^(result|detail) ' >>"$RES"
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
	for p in $PRODS; do
		for s in $SIZES; do
			# Rotate the order of the sides each round.
			# shellcheck disable=SC2086 # the list of sides
			set -- $SIDES
			k=1
			while [ "$k" -lt "$r" ]; do
				_f=$1
				shift
				set -- "$@" "$_f"
				k=$((k + 1))
			done
			for side in "$@"; do run_one "$side" "$p" "$s" "$r"; done
		done
	done
	say "round $r of $ROUNDS done"
	r=$((r + 1))
done

rmmod rmbench_writer || fail "rmmod rmbench_writer"
rm_unload

# The table and the ratios: medians over the rounds; ratios are the median of
# the per-round ratios (each round's runs are next to each other in time).
awk -v rounds="$ROUNDS" -v sides="$SIDES" -v sizes="$SIZES" -v prods="$PRODS" '
function kv(line, k,    i, n, a, b) {
	n = split(line, a, " ")
	for (i = 1; i <= n; i++) { split(a[i], b, "="); if (b[1] == k) return b[2] }
	return ""
}
function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	if (n == 0) return 0
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$1 == "result" {
	k = kv($0, "side") SUBSEP kv($0, "prod") SUBSEP kv($0, "payload"); r = kv($0, "round")
	rps[k] = rps[k] " " kv($0, "rps"); mb[k] = mb[k] " " kv($0, "mbps")
	dr[k] = dr[k] " " kv($0, "drop_pct"); cpu[k] = cpu[k] " " kv($0, "cpu_per_m")
	one[k, r] = kv($0, "rps"); rb[k] = kv($0, "rec_bytes")
}
$1 == "detail" {
	k = kv($0, "side") SUBSEP kv($0, "prod") SUBSEP kv($0, "payload")
	ctl[k] = ctl[k] " " kv($0, "ctl_per_subbuf")
}
function ratio(a, b, p, s,    r, l, x, y) {
	l = ""
	for (r = 1; r <= rounds; r++) {
		x = one[a, p, s, r]; y = one[b, p, s, r]
		if (x != "" && y > 0) l = l " " x / y
	}
	return median(l)
}
function spread(a, b, p, s,    r, x, y, q, lo, hi) {
	lo = ""; hi = ""
	for (r = 1; r <= rounds; r++) {
		x = one[a, p, s, r]; y = one[b, p, s, r]
		if (x == "" || y <= 0) continue
		q = x / y
		if (lo == "" || q < lo) lo = q
		if (hi == "" || q > hi) hi = q
	}
	return lo == "" ? "-" : sprintf("%.2f-%.2f", lo, hi)
}
END {
	ns = split(sides, S, " "); nz = split(sizes, Z, " "); np = split(prods, P, " ")
	printf "%-5s %-8s %-9s %11s %9s %7s %10s %9s %8s\n", "prod", "payload", "side", "rec/s", "MB/s", "drop%", "cpu-s/Mrec", "rec bytes", "ctl/sb"
	for (i = 1; i <= np; i++) for (j = 1; j <= nz; j++) for (m = 1; m <= ns; m++) {
		k = S[m] SUBSEP P[i] SUBSEP Z[j]
		c = (k in ctl) ? sprintf("%.2f", median(ctl[k])) : "-"
		printf "%-5s %-8s %-9s %11.0f %9.2f %7.2f %10.4f %9s %8s\n", P[i], Z[j] " B", S[m], median(rps[k]), median(mb[k]), median(dr[k]), median(cpu[k]), rb[k], c
	}
	for (i = 1; i <= np; i++) for (j = 1; j <= nz; j++)
		printf "levers %sx%s: rm-ready/rm %.2f, rm-each/rm %.2f, rm-each/rm-ready %.2f, rm-cursors/rm %.2f (rec/s)\n", P[i], Z[j], ratio("rm-ready", "rm", P[i], Z[j]), ratio("rm-each", "rm", P[i], Z[j]), ratio("rm-each", "rm-ready", P[i], Z[j]), ratio("rm-cursors", "rm", P[i], Z[j])
	line = "spread: rm/bpf per-round min-max (the noise of this boot):"
	for (i = 1; i <= np; i++) for (j = 1; j <= nz; j++)
		line = line sprintf(" %sx%s %s", P[i], Z[j], spread("rm", "bpf", P[i], Z[j]))
	print line
	line = "ratios: rec/s relaymap(rm)/bpf/bpf-wake/perf, median of " rounds " interleaved runs, PRODUCERSxPAYLOAD:"
	for (i = 1; i <= np; i++) for (j = 1; j <= nz; j++)
		line = line sprintf(" %sx%s %.2f/%.2f/%.2f", P[i], Z[j], ratio("rm", "bpf", P[i], Z[j]), ratio("rm", "bpf-wake", P[i], Z[j]), ratio("rm", "perf", P[i], Z[j]))
	print line
}' "$RES"
