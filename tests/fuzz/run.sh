#!/usr/bin/env bash
# Runs every cargo-fuzz target of tests/fuzz for a set number of
# executions and prints one line per target (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh [--smoke] [--runs N] [TARGET...]
#
#   default    10000000 executions per target (RELAYMAP_FUZZ_RUNS overrides)
#   --smoke    20000 executions per target (tests/host/40-fuzz-smoke.sh)
#   --runs N   N executions per target
#   TARGET...  only these targets (default: every [[bin]] of Cargo.toml)
#
# Long runs share the machine: run them as `nice -n 19 tests/fuzz/run.sh`.
# Before fuzzing a target, every input in tests/fuzz/regressions/<target>/
# (crashes found before, kept) runs once; one that still fails is a FAIL.
# Corpora grow in tests/fuzz/corpus/<target>, crashes are saved in
# tests/fuzz/artifacts/<target>/, full logs in tests/fuzz/target/logs/<run>/
# (target/logs/latest: the newest run).
# RELAYMAP_FUZZ_VERBOSE=1 shows what `verify` prints (hidden while
# fuzzing).
# Exit: 0 no crash, 1 a crash (or a build failure), 77 no nightly
# toolchain ("skipping: ..." printed).
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 1
fuzz=tests/fuzz

runs=${RELAYMAP_FUZZ_RUNS:-10000000}
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) runs=20000 ;;
	--runs)
		runs=${2:?--runs needs a number}
		shift
		;;
	-h | --help)
		sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "run.sh: unknown option $1 (see --help)" >&2
		exit 2
		;;
	*) targets+=("$1") ;;
	esac
	shift
done
case $runs in
'' | *[!0-9]*)
	echo "run.sh: --runs wants a number of executions, got '$runs'" >&2
	exit 2
	;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
	echo "skipping: no nightly toolchain (cargo-fuzz needs one: rustup toolchain install nightly)"
	exit 77
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
	echo "run.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked"
	if ! cargo install cargo-fuzz --locked; then
		echo "FAIL: could not install cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
		exit 1
	fi
fi
if [ ${#targets[@]} = 0 ]; then
	mapfile -t targets < <(sed -n '/^\[\[bin\]\]/,/^$/s/^name = "\(.*\)"/\1/p' "$fuzz/Cargo.toml")
fi

# One log folder per run (a long run in the background and a smoke
# must not write into each other's logs); target/logs/latest points at it.
logs=$fuzz/target/logs/$(date +%Y%m%d-%H%M%S).$$
mkdir -p "$logs"
ln -sfn "$(basename "$logs")" "$fuzz/target/logs/latest"
# Until sdk/src/lib.rs allows missing_docs on the walker items its
# cfg(fuzzing) seam makes pub (requested), cap lints in the fuzz build.
export RUSTFLAGS="${RUSTFLAGS:-} --cap-lints=warn"
echo "--- cargo +nightly fuzz build (AddressSanitizer, debug assertions): ${targets[*]}"
if ! cargo +nightly fuzz build --fuzz-dir "$fuzz" >"$logs/build.log" 2>&1; then
	tail -n 30 "$logs/build.log"
	echo "FAIL: cargo +nightly fuzz build --fuzz-dir $fuzz (log: $logs/build.log)" >&2
	exit 1
fi

crashed=()
total_start=$SECONDS
for t in "${targets[@]}"; do
	log=$logs/$t.log
	mkdir -p "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
	# Inputs that crashed before must pass now.
	regs=()
	[ -d "$fuzz/regressions/$t" ] && mapfile -t regs < <(find "$fuzz/regressions/$t" -type f | sort)
	if [ ${#regs[@]} -gt 0 ]; then
		if cargo +nightly fuzz run --fuzz-dir "$fuzz" "$t" "${regs[@]}" -- -timeout=60 >"$logs/$t.regressions.log" 2>&1; then
			echo "ok: $t: ${#regs[@]} regression input(s) pass: ${regs[*]##*/}"
		else
			crashed+=("$t")
			echo "FAIL: $t: a regression input fails again (of: ${regs[*]##*/}); log: $logs/$t.regressions.log"
			continue
		fi
	fi
	t0=$(date +%s.%N)
	cargo +nightly fuzz run --fuzz-dir "$fuzz" "$t" -- \
		-runs="$runs" -timeout=60 -print_final_stats=1 >"$log" 2>&1
	rc=$?
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	done_line=$(grep -aE '^Done [0-9]+ runs' "$log" | tail -n 1)
	execs=$(grep -a '^stat::number_of_executed_units:' "$log" | tail -n 1 | tr -dc 0-9)
	[ -n "$execs" ] || execs=$(grep -aoE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
	cov=$(grep -aoE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
	corp=$(grep -aoE 'corp: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
	rate=$(awk -v n="${execs:-0}" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
	if [ "$rc" = 0 ] && [ -n "$done_line" ]; then
		echo "ok: $t: ${execs:-?} executions in $secs s (${rate:-?} exec/s), cov ${cov:-?}, corpus ${corp:-?}, no crash"
	else
		crashed+=("$t")
		art=$(grep -aoE "$fuzz/artifacts/$t/[a-z-]+-[0-9a-f]+" "$log" | tail -n 1)
		kind=${art##*/}
		kind=${kind%-*}
		why=$(grep -a -m1 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" -A1 "$log" | tr '\n' ' ')
		echo "FAIL: $t: ${kind:-exit $rc} after ${execs:-?} executions in $secs s: ${why:-see $log}"
		echo "      input: ${art:-none saved}; reproduce: RELAYMAP_FUZZ_VERBOSE=1 cargo +nightly fuzz run --fuzz-dir $fuzz $t ${art:-}"
		echo "      log: $log"
	fi
done
echo "${#targets[@]} targets, $runs executions each, $((SECONDS - total_start)) s, ${#crashed[@]} crashed${crashed[*]:+: ${crashed[*]}}"
[ ${#crashed[@]} = 0 ]
