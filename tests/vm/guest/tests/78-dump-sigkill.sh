#!/bin/sh
# Crash and restart, exactly once (issue 10): the load generator writes a
# fixed count per CPU (lossless: while no dumper runs it waits for space),
# the dumper is SIGKILLed at 5 random points of one run, each defined by
# progress (kill k once a random amount within the k-th fifth of the run's
# bytes is on disk), and restarted each time into the same directory. Then `verify` must report
# every record the load generator wrote, 0 lost, 0 duplicated, 0 corrupt, no
# torn tail. 1 MiB sub-buffers; 72- and 200-byte records (neither divides
# the page, so records straddle every page boundary and a kill can tear a
# packet anywhere). Every restart says where each CPU continues; before it,
# `relaymap stat` gives what the kernel considers consumed, so the figures
# show how many sub-buffers were on disk but not yet handed back (skipped
# by the restart) and how many torn tails were cut.
# timeout: 600
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

command -v rmdump_killat >/dev/null || fail "rmdump_killat not built (build.d/70-dump.sh)"

rand() { od -An -N4 -tu4 /dev/urandom | tr -d ' '; }

# consumed_total CH: the kernel's consumed count summed over CPUs.
consumed_total() {
	relaymap stat "$1" | awk '$1 ~ /^[0-9]+$/ { s += $3 } END { print s + 0 }'
}

ncpu=$(grep -c '^processor' /proc/cpuinfo)

run_case() {
	rec=$1 count=$2 rate=$3
	d=/tmp/kill$rec
	echo "--- $rec-byte records, $count per CPU at up to $rate/s, $ncpu x 4 x 1 MiB, 5 SIGKILLs"
	rm_load name=kill subbuf_size=1048576 n_subbufs=4
	# A rate limit stretches the run over seconds (a full-speed load is
	# done before the first kill could land inside it); lossless: while
	# the dumper is dead the writers wait.
	lg_load channel=kill record_size="$rec" mode=lossless count="$count" rate="$rate"
	total_bytes=$((rec * count * ncpu))
	lg_start
	kills=0 torn=0 skipped=0
	while [ "$kills" -lt 5 ]; do
		before=$(consumed_total kill)
		# A fresh file: dump_start must not find the last dumper's line.
		rm -f /tmp/k.err
		dump_start /tmp/k.err kill -o "$d"
		if grep -q 'continuing the trace' /tmp/k.err; then
			# "cpuN from seq S": S - consumed = sub-buffers on disk the
			# kernel had not seen handed back; the restart skips them.
			from=$(sed -n 's/.*): //p' /tmp/k.err | tr ',' '\n' | awk '$3 == "seq" { s += $4 } END { print s + 0 }')
			skipped=$((skipped + from - before))
		fi
		torn=$((torn + $(grep -c 'cut a torn tail' /tmp/k.err)))
		grep -E 'continuing|torn' /tmp/k.err | sed 's/^/  /'
		# Within the (kills+1)-th band of 18 % of the run: 2-18 %, 20-36 %, ...
		target=$((total_bytes / 100 * (kills * 18 + 2 + $(rand) % 16)))
		# rmdump_killat polls the file sizes every 200 us and SIGKILLs the
		# dumper the moment they reach the target: inside a write, between a
		# write and its PUT_CONSUMED, or in a wait, wherever the run is.
		rmdump_killat "$d" "$target" "$pid" >/tmp/kat.out 2>&1 || { cat /tmp/kat.out /tmp/k.err; fail "kill $((kills + 1)): the dumper ended before $target bytes were on disk"; }
		wait "$pid"
		kills=$((kills + 1))
		echo "  kill $kills: target $target bytes, $(cat /tmp/kat.out)"
	done
	before=$(consumed_total kill)
	rm -f /tmp/k.err
	dump_start /tmp/k.err kill -o "$d"
	from=$(sed -n 's/.*): //p' /tmp/k.err | tr ',' '\n' | awk '$3 == "seq" { s += $4 } END { print s + 0 }')
	skipped=$((skipped + from - before))
	torn=$((torn + $(grep -c 'cut a torn tail' /tmp/k.err)))
	lg_wait_idle 300
	lg_status >/tmp/st
	kill -INT "$pid"
	dump_wait "$pid" "after the last restart" /tmp/k.err
	cat /tmp/k.err
	written=$(awk '$1 == "total" { print $5 }' /tmp/st)
	assert_eq "$written" "$((count * ncpu))" "load generator written"
	check_verify "$d" --loadgen-status /tmp/st
	grep -q "^verified $written records, 0 lost, 0 corrupt\$" /tmp/verify.out ||
		fail "verify: want $written records, 0 lost, 0 corrupt"
	grep -q '^exactly once: 0 duplicated, 0 torn tails, 0 packets missing;' /tmp/verify.out ||
		fail "verify: duplicates, torn tails or missing packets"
	dups=$(awk '$1 == "exactly" { print $3 }' /tmp/verify.out)
	echo "sigkill: $rec-byte records: kills $kills, records $written, lost 0, duplicated $dups (the restarts cut $torn torn tails and skipped $skipped sub-buffers that were on disk but not handed back)"
	rm -rf "$d"
	rm_unload
}

run_case 72 400000 80000
run_case 200 150000 30000
echo "ok: 10 SIGKILLs, every restart continued the same trace exactly once"
