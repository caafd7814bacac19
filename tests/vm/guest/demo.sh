#!/bin/sh
# boot: rmvm.disk=1
# The README's demo (`tests/vm/run demo`), in the guest:
#  1. end to end: relaymap.ko + the load generator at full speed on every
#     CPU (lossless: it waits for space, so its rate is the consumer's
#     end-to-end rate), relaymap-dump (zero-copy writev from the mapping)
#     to per-CPU files; every record verified (checksum, fill, per-CPU seq
#     continuity, counts against the load generator);
#  2. the same load consumed by relaymap-dump (--direct and the page-cache
#     path) and by a read()-based copy, all to the same sink (the ext4 disk
#     when the demo boot has one, else tmpfs files; it says which): the
#     buffers are filled first (32 x 1 MiB per CPU, no consumer), then each
#     consumer drains them alone; MB/s and CPU-seconds per GB side by side,
#     best of 3 runs each (the host's other load makes single TCG runs
#     noisy); the relaymap-dump runs are verified too.
# The channel is opened by name through /dev/relaymap everywhere.
# Last line: demo: verified N records, 0 lost, 0 corrupt
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

REC=128 # bytes per record, header included

say() { echo "demo: $*"; }
now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
json() { # FIELD FILE: first numeric value of "FIELD" in a stats JSON
	awk -F': ' -v k="\"$1\"" '$1 ~ k"$" { sub(",", "", $2); print $2; exit }' "$2"
}
verified=0
verify() { # DIR STATUS [quiet]: verify a dump, add its records to $verified
	relaymap-dump verify "$1" --loadgen-status "$2" >/tmp/verify.out
	_rc=$?
	if [ "${3:-}" != quiet ] || [ "$_rc" != 0 ]; then
		sed 's/^/  /' /tmp/verify.out
	fi
	_line=$(grep '^verified ' /tmp/verify.out)
	grep -q '^exactly once: 0 duplicated, 0 torn tails, 0 packets missing;' /tmp/verify.out ||
		fail "not exactly once: $(grep '^exactly once' /tmp/verify.out)"
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
dump_start /tmp/dump.err demo -o /tmp/demo --stats-json /tmp/demo.json
t0=$(now_cs)
lg_start
lg_wait_idle 300
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

# --- 2. consumers compared on the same load, to the same sink --------------
# The sink: the ext4 virtio disk when the demo boot has one (# boot:
# rmvm.disk=1 above), else tmpfs files; both consumers write to the same.
if grep -q 'rmvm.disk=1' /proc/cmdline && need_disk; then
	SINK=/mnt/disk SINKNAME="ext4 on a virtio disk"
else
	SINK=/tmp SINKNAME="tmpfs files (this boot has no disk)"
fi
PRE=240000 # records per CPU: 30.7 MB, fits in 32 x 1 MiB
preload() {
	rm_load name=demo subbuf_size=1048576 n_subbufs=32
	lg_load channel=demo record_size=$REC mode=lossless count=$PRE
	lg_start
	lg_wait_idle 300
	lg_status >/tmp/status
	[ "$(lg_stat written total)" = $((PRE * ncpu)) ] || fail "preload: $(lg_stat written total) records"
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
say "2. the same load drained by each consumer alone into $SINKNAME: $PRE records per CPU ($((PRE * REC * ncpu / 1000000)) MB) preloaded into $ncpu x 32 x 1 MiB (no consumer), then drained; CPU time is the consumer's own (getrusage); best of 3"
# keep FILE MBS CPUPERGB: remember the run with the best MB/s
keep() {
	if [ ! -s "$1" ] || awk -v m="$2" '{ exit !(m > $1) }' "$1"; then echo "$2 $3" >"$1"; fi
}
cpg() { awk -v c="$1" -v b="$2" 'BEGIN { printf "%.2f", c / (b / 1e9) }'; }
rm -f /tmp/best.* /tmp/direct.refused
for run in 1 2 3; do
	for how in direct writev; do
		preload
		flag=
		[ "$how" = direct ] && flag=--direct
		# --duration 0: flush, drain what was produced, exit.
		# shellcheck disable=SC2086 # $flag is empty or one word
		relaymap-dump demo -o "$SINK/demo" $flag --duration 0 --stats-json /tmp/pre.json 2>/tmp/pre.err ||
			{ cat /tmp/pre.err; fail "relaymap-dump (drain) failed"; }
		grep 'refuses O_DIRECT' /tmp/pre.err | sed 's/^/  /' | tee -a /tmp/direct.refused
		b=$(json bytes /tmp/pre.json)
		mbs=$(awk -v b="$b" -v e="$(json elapsed_s /tmp/pre.json)" -v s="$(json setup_s /tmp/pre.json)" \
			'BEGIN { printf "%.1f", b / (e - s) / 1e6 }')
		c=$(cpg "$(json cpu_time_s /tmp/pre.json)" "$b")
		say "  run $run relaymap-dump ($how): $mbs MB/s, $c CPU-s/GB ($(json direct_writes /tmp/pre.json) packets with O_DIRECT, $(json fsyncs /tmp/pre.json) fdatasyncs)"
		verify "$SINK/demo" /tmp/status quiet
		keep "/tmp/best.$how" "$mbs" "$c"
		rm -rf "$SINK/demo"
		rm_unload
	done
	preload
	relaymap-dump read-copy demo -o "$SINK/rc" --drain >/tmp/rc.out 2>&1 ||
		{ cat /tmp/rc.out; fail "read-copy failed"; }
	mbs=$(awk '{ for (i = 2; i <= NF; i++) if ($i == "MB/s),") { v = $(i - 1); sub(/^\(/, "", v); print v; exit } }' /tmp/rc.out)
	# shellcheck disable=SC2012 # sizes only
	b=$(ls -l "$SINK"/rc/cpu*.read | awk '{ s += $5 } END { print s }')
	c=$(cpg "$(awk '{ for (i = 2; i <= NF; i++) if ($i == "CPU-s") { print $(i - 1); exit } }' /tmp/rc.out)" "$b")
	say "  run $run read() copy: $mbs MB/s, $c CPU-s/GB"
	keep /tmp/best.read "$mbs" "$c"
	rm -rf "$SINK/rc"
	rm_unload
done
say "drain into $SINKNAME, best of 3 (MB/s after setup; CPU-seconds per GB of the consumer process):"
if [ -s /tmp/direct.refused ]; then
	what="--direct refused by this file system: through the page cache too"
else
	what="O_DIRECT from the mapping"
fi
say "  relaymap-dump --direct ($what): $(awk '{ print $1 " MB/s, " $2 " CPU-s/GB" }' /tmp/best.direct)"
say "  relaymap-dump (pwritev from the mapping into the page cache): $(awk '{ print $1 " MB/s, " $2 " CPU-s/GB" }' /tmp/best.writev)"
say "  read() copy (read() into a buffer, then write(); not SMP-safe, comparison only): $(awk '{ print $1 " MB/s, " $2 " CPU-s/GB" }' /tmp/best.read)"
say "verified $verified records, 0 lost, 0 corrupt"
