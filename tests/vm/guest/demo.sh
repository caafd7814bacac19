#!/bin/sh
# The README's demo (`tests/vm/run demo`), in the guest:
#  1. end to end: relaymap.ko + the load generator at full speed on every
#     CPU (lossless: it waits for space, so its rate is the consumer's
#     end-to-end rate), relaymap-dump (zero-copy writev from the mapping)
#     to per-CPU files; every record verified (checksum, fill, per-CPU seq
#     continuity, counts against the load generator);
#  2. the same kind of load consumed by relaymap-dump and by a read()-based
#     copy: the buffers are filled first (32 x 1 MiB per CPU, no consumer),
#     then each consumer drains them alone, best of 3 runs each (the host's
#     other load makes single TCG runs noisy); the relaymap-dump runs are
#     verified too.
# Last line: demo: verified N records, 0 lost, 0 corrupt
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

REC=128 # bytes per record, header included

say() { echo "demo: $*"; }
now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
lg_wait_idle() {
	_i=0
	while [ "$(lg_status | awk '$1 == "state" { print $2 }')" != idle ]; do
		sleep 0.05
		_i=$((_i + 1))
		[ "$_i" -lt 6000 ] || fail "load generator still running after 300 s"
	done
}
json() { # FIELD FILE: first numeric value of "FIELD" in a stats JSON
	awk -F': ' -v k="\"$1\"" '$1 ~ k"$" { sub(",", "", $2); print $2; exit }' "$2"
}
verified=0
verify() { # DIR STATUS: verify a dump, add its records to $verified
	relaymap-dump verify "$1" --loadgen-status "$2" >/tmp/verify.out
	_rc=$?
	sed 's/^/  /' /tmp/verify.out
	_line=$(tail -n 1 /tmp/verify.out)
	[ "$_rc" = 0 ] || fail "verification failed (exit $_rc): $_line"
	_n=$(echo "$_line" | awk '$1 == "verified" && $4 == "0" && $6 == "0" { print $2 }')
	[ -n "$_n" ] || fail "unexpected verification result: $_line"
	verified=$((verified + _n))
}

ncpu=$(grep -c '^processor' /proc/cpuinfo)
say "kernel $(uname -r), $ncpu CPUs (QEMU TCG, no KVM)"

# --- 1. end to end --------------------------------------------------------
COUNT=300000
say "1. end to end: load generator on every CPU at full speed (lossless), $REC-byte records, $COUNT per CPU; channel $ncpu x 8 x 256 KiB"
rm_load name=demo subbuf_size=262144 n_subbufs=8
lg_load channel=demo record_size=$REC mode=lossless count=$COUNT
relaymap-dump "$(rm_dir demo)" -o /tmp/demo --stats-json /tmp/demo.json 2>/tmp/dump.err &
pid=$!
sleep 0.5
t0=$(now_cs)
lg_start
lg_wait_idle
t1=$(now_cs)
lg_status >/tmp/status
kill -INT "$pid"
wait "$pid"
rc=$?
sed 's/^/  /' /tmp/dump.err
[ "$rc" = 0 ] || fail "relaymap-dump exited $rc"
written=$(awk '$1 == "total" { print $5 }' /tmp/status)
awk -v n="$written" -v cs="$((t1 - t0))" -v rec="$REC" -v d="$(json records_dropped /tmp/demo.json)" 'BEGIN {
	s = cs / 100; if (s <= 0) s = 0.01
	printf "demo: relaymap-dump end to end: %d records in %.2f s = %.0f records/s, %.1f MB/s, %d dropped\n",
		n, s, n / s, n * rec / s / 1e6, d }'
say "verifying every record (checksum, fill, seq continuity, counts vs the load generator)"
verify /tmp/demo /tmp/status
rm -rf /tmp/demo
rm_unload

# --- 2. consumers compared on the same load --------------------------------
PRE=240000 # records per CPU: 30.7 MB, fits in 32 x 1 MiB
preload() {
	rm_load name=demo subbuf_size=1048576 n_subbufs=32
	lg_load channel=demo record_size=$REC mode=lossless count=$PRE
	lg_start
	lg_wait_idle
	lg_status >/tmp/status
	[ "$(lg_stat written total)" = $((PRE * ncpu)) ] || fail "preload: $(lg_stat written total) records"
}
say "2. the same load drained by each consumer alone: $PRE records per CPU ($((PRE * REC * ncpu / 1000000)) MB) preloaded into $ncpu x 32 x 1 MiB, best of 3"
best_dump=0
best_rc=0
for run in 1 2 3; do
	preload
	# --duration 0: flush, drain what was produced, exit.
	relaymap-dump "$(rm_dir demo)" -o /tmp/demo --duration 0 --stats-json /tmp/pre.json 2>/tmp/pre.err ||
		{ cat /tmp/pre.err; fail "relaymap-dump (drain) failed"; }
	# Throughput after the one-time setup (open, mmap + pre-fault of the
	# 64 MB of buffers, output files); read-copy times its loop alone too.
	mbs=$(awk -v b="$(json bytes /tmp/pre.json)" -v e="$(json elapsed_s /tmp/pre.json)" -v s="$(json setup_s /tmp/pre.json)" \
		'BEGIN { printf "%.1f", b / (e - s) / 1e6 }')
	say "  relaymap-dump run $run: $(head -n 1 /tmp/pre.err | sed 's/^relaymap-dump: //')"
	say "  relaymap-dump run $run: setup (open, mmap + pre-fault) $(json setup_s /tmp/pre.json | cut -c1-5) s, drain $mbs MB/s"
	verify /tmp/demo /tmp/status
	best_dump=$(awk -v a="$best_dump" -v b="$mbs" 'BEGIN { print (b > a) ? b : a }')
	rm -rf /tmp/demo
	rm_unload

	preload
	relaymap-dump read-copy "$(rm_dir demo)" -o /tmp/rc --drain >/tmp/rc.out 2>&1 ||
		{ cat /tmp/rc.out; fail "read-copy failed"; }
	say "  read() copy run $run: $(sed 's/^read-copy: //' /tmp/rc.out)"
	mbs=$(awk '{ for (i = 1; i < NF; i++) if ($i == "in") { b = $(i - 2); u = $(i - 1); s = $(i + 1) } }
		END { m = (u == "GB") ? 1e3 : (u == "MB") ? 1 : (u == "kB") ? 1e-3 : 1e-6; printf "%.1f", b * m / s }' /tmp/rc.out)
	best_rc=$(awk -v a="$best_rc" -v b="$mbs" 'BEGIN { print (b > a) ? b : a }')
	rm -rf /tmp/rc
	rm_unload
done
say "drain throughput, best of 3: relaymap-dump $best_dump MB/s (zero-copy writev, after setup), read() copy $best_rc MB/s (read() into a buffer, then write(); not SMP-safe, comparison only) = $(awk -v a="$best_dump" -v b="$best_rc" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "n/a" }')"
say "verified $verified records, 0 lost, 0 corrupt"
