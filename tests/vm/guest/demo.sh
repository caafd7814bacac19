#!/bin/sh
# The README's demo (`tests/vm/run demo`): load relaymap.ko and the load
# generator at full speed (lossless: the generator waits for space, so the
# rate is the consumer's end-to-end rate), dump with relaymap-dump
# (zero-copy writev from the mapping), verify every record (checksum, fill,
# per-CPU seq continuity, counts against the loadgen), then move the same
# load with a read()-based copy for comparison. Last line:
#   demo: verified N records, 0 lost, 0 corrupt
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

SUBBUF=262144   # 256 KiB sub-buffers
NSUB=8          # per CPU
REC=128         # bytes per record, header included
COUNT=300000    # records per CPU (~38 MB per CPU)

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
# rate RECORDS CENTISECONDS: "N records in S s = R records/s, M MB/s"
rate() {
	awk -v n="$1" -v cs="$2" -v rec="$REC" 'BEGIN {
		s = cs / 100; if (s <= 0) s = 0.01
		printf "%d records in %.2f s = %.0f records/s, %.1f MB/s\n", n, s, n / s, n * rec / s / 1e6 }'
}
mbps() { awk -v n="$1" -v cs="$2" -v rec="$REC" 'BEGIN { s = cs / 100; if (s <= 0) s = 0.01; printf "%.1f", n * rec / s / 1e6 }'; }

ncpu=$(grep -c '^processor' /proc/cpuinfo)
say "kernel $(uname -r), $ncpu CPUs (QEMU TCG)"
say "channel demo: $ncpu x $NSUB x $((SUBBUF / 1024)) KiB sub-buffers; load generator: $REC-byte records, full speed, lossless, $COUNT per CPU"

# --- 1. relaymap-dump -----------------------------------------------------
rm_load name=demo subbuf_size=$SUBBUF n_subbufs=$NSUB
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
dropped=$(grep -m1 '"records_dropped"' /tmp/demo.json | tr -dc 0-9)
dump_cs=$((t1 - t0))
dump_cpu=$(awk -F': ' '/"cpu_time_s"/ { sub(",", "", $2); printf "%.2f", $2 }' /tmp/demo.json)
say "relaymap-dump: $(rate "$written" "$dump_cs"), $dropped dropped; consumer CPU time $dump_cpu s"
say "verifying every record (checksum, fill, seq continuity, counts vs the load generator)"
relaymap-dump verify /tmp/demo --loadgen-status /tmp/status >/tmp/verify.out
vrc=$?
sed 's/^/  /' /tmp/verify.out
rm -rf /tmp/demo
rm_unload

# --- 2. read() copy, same load --------------------------------------------
rm_load name=demo subbuf_size=$SUBBUF n_subbufs=$NSUB
lg_load channel=demo record_size=$REC mode=lossless count=$COUNT
relaymap-dump read-copy "$(rm_dir demo)" -o /tmp/rc >/tmp/rc.out 2>&1 &
pid=$!
sleep 0.5
t0=$(now_cs)
lg_start
lg_wait_idle
t1=$(now_cs)
rc_written=$(lg_stat written total)
kill -INT "$pid"
wait "$pid"
sed 's/^/  /' /tmp/rc.out
rc_cs=$((t1 - t0))
rc_cpu=$(awk '{ for (i = 1; i < NF; i++) if ($(i + 1) ~ /^CPU-s/) { printf "%.2f", $i; exit } }' /tmp/rc.out)
say "read() copy (read() into a buffer, then write(); not SMP-safe, for comparison only): $(rate "$rc_written" "$rc_cs"); consumer CPU time $rc_cpu s"
rm -rf /tmp/rc
rm_unload

d=$(mbps "$written" "$dump_cs")
r=$(mbps "$rc_written" "$rc_cs")
say "end-to-end: relaymap-dump $d MB/s, read() copy $r MB/s (both bound by the load generator under TCG: it runs on every CPU)"
say "consumer cost per MB: $(awk -v n="$written" -v m="$rc_written" -v a="$dump_cpu" -v b="$rc_cpu" -v rec="$REC" 'BEGIN {
	da = (a > 0) ? n * rec / a / 1e6 : 0; db = (b > 0) ? m * rec / b / 1e6 : 0
	printf "relaymap-dump %.0f MB per CPU-second, read() copy %.0f MB per CPU-second", da, db
	if (db > 0) printf " (%.1fx)", da / db }')"
[ "$vrc" = 0 ] || fail "verification failed (exit $vrc)"
line=$(tail -n 1 /tmp/verify.out)
case "$line" in
"verified $written records, 0 lost, 0 corrupt") ;;
*) fail "unexpected verification result: $line" ;;
esac
say "$line"
