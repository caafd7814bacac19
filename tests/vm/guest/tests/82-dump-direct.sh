#!/bin/sh
# --direct on ext4 (issue 10; this boot has a fresh ext4 virtio disk at
# /mnt/disk): (1) a dump during a full-speed load with --direct goes
# through O_DIRECT (no packet through the page cache) and verifies, 0
# lost; on tmpfs --direct says it falls back where tmpfs refuses O_DIRECT
# (before Linux 6.6). (2) CPU-seconds per GB of the
# consumer on ext4, same load (the buffers preloaded: 2 x 32 x 1 MiB of
# 128-byte records, no consumer), drained by: --direct (O_DIRECT from the
# mapping), the buffered writev path (page cache), and read-copy (read()
# into a buffer + write()), the first two also with --fsync exit (one sync
# at the end, as read-copy does; the default syncs every batch before its
# PUT_CONSUMED). CPU time is the consumer's own (getrusage: --stats-json
# cpu_time_s, read-copy's summary; writeback by kernel threads is not in
# it); 3 runs each, the median.
# boot: rmvm.disk=1
# timeout: 600
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

need_disk || fail "no ext4 disk at /mnt/disk (rmvm.disk=1)"
json() { sed -n "s/^  \"$1\": \\([0-9.]*\\),\$/\\1/p" "$2" | head -n 1; }
ncpu=$(grep -c '^processor' /proc/cpuinfo)

echo "--- 1: --direct during a full-speed load on ext4"
rm_load name=dio subbuf_size=262144 n_subbufs=8
lg_load channel=dio record_size=200 mode=lossless count=60000
dump_start /tmp/d.err dio -o /mnt/disk/dio --direct --stats-json /tmp/d.json
lg_start
lg_wait_idle 240
lg_status >/tmp/st
kill -INT "$pid"
dump_wait "$pid" "with --direct" /tmp/d.err
cat /tmp/d.err
grep -q 'refuses O_DIRECT' /tmp/d.err && fail "ext4 refused O_DIRECT"
dw=$(json direct_writes /tmp/d.json)
bw=$(json buffered_writes /tmp/d.json)
[ "$dw" -gt 0 ] || fail "no packet went through O_DIRECT"
assert_eq "$bw" 0 "packets through the page cache with --direct"
check_verify /mnt/disk/dio --loadgen-status /tmp/st
echo "ok: --direct on ext4: $dw packets with O_DIRECT, 0 through the page cache, verified"
rm -rf /mnt/disk/dio
rm_unload

echo "--- --direct on tmpfs: refused before 6.6 (a fallback message), accepted since"
rm_load name=dio subbuf_size=65536 n_subbufs=8
lg_load channel=dio record_size=64 mode=lossless count=5000
lg_start
lg_wait_idle 60
lg_status >/tmp/st
relaymap-dump dio -o /tmp/t --direct --duration 0 --stats-json /tmp/t.json 2>/tmp/t.err || { cat /tmp/t.err; fail "--direct on tmpfs"; }
cat /tmp/t.err
if grep -q 'refuses O_DIRECT' /tmp/t.err; then
	assert_eq "$(json direct_writes /tmp/t.json)" 0 "O_DIRECT packets after the fallback"
	echo "ok: tmpfs refused O_DIRECT; the dumper said so and used the page cache"
else
	# tmpfs takes O_DIRECT since Linux 6.6 (shmem direct I/O).
	[ "$(json direct_writes /tmp/t.json)" -gt 0 ] || fail "no fallback message, and no packet through O_DIRECT"
	echo "ok: this kernel's tmpfs accepts O_DIRECT: $(json direct_writes /tmp/t.json) packets"
fi
check_verify /tmp/t --loadgen-status /tmp/st
rm -rf /tmp/t
rm_unload

echo "--- 2: CPU-seconds per GB on ext4, same preloaded load"
PRE=240000
preload() {
	rm_load name=dio subbuf_size=1048576 n_subbufs=32
	lg_load channel=dio record_size=128 mode=lossless count=$PRE
	lg_start
	lg_wait_idle 300
	lg_status >/tmp/st
}
# cpu_per_gb CPU_S BYTES
cpu_per_gb() { awk -v c="$1" -v b="$2" 'BEGIN { printf "%.2f", c / (b / 1e9) }'; }
mbs() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", b / s / 1e6; else print "n/a" }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: >/tmp/r.direct
: >/tmp/r.writev
: >/tmp/r.direct-exit
: >/tmp/r.writev-exit
: >/tmp/r.direct-raw
: >/tmp/r.read
for run in 1 2 3; do
	for how in direct writev direct-exit writev-exit direct-raw; do
		preload
		flag=
		case $how in direct*) flag=--direct ;; esac
		case $how in *-exit) flag="$flag --fsync exit" ;; esac
		# --raw: no walk over the records (what read-copy does not do either)
		case $how in *-raw) flag="$flag --raw" ;; esac
		sync
		echo 3 >/proc/sys/vm/drop_caches
		# shellcheck disable=SC2086 # $flag is empty or one word
		relaymap-dump dio -o /mnt/disk/m $flag --duration 0 --stats-json /tmp/m.json 2>/tmp/m.err ||
			{ cat /tmp/m.err; fail "relaymap-dump $how"; }
		b=$(json bytes /tmp/m.json)
		c=$(json cpu_time_s /tmp/m.json)
		e=$(json elapsed_s /tmp/m.json)
		s=$(json setup_s /tmp/m.json)
		echo "  run $run $how: $b bytes, $c CPU-s, $(cpu_per_gb "$c" "$b") CPU-s/GB, $(mbs "$b" "$(awk -v e="$e" -v s="$s" 'BEGIN { print e - s }')") MB/s, $(json direct_writes /tmp/m.json) O_DIRECT / $(json buffered_writes /tmp/m.json) buffered packets, $(json fsyncs /tmp/m.json) fdatasyncs"
		# Without the setup (mapping + pre-faulting 64 MB of buffers once,
		# which a long-running dumper pays once, not per GB).
		steady=$(awk -v c="$c" -v s="$(json setup_cpu_s /tmp/m.json)" 'BEGIN { print c - s }')
		echo "$(cpu_per_gb "$c" "$b") $(mbs "$b" "$(awk -v e="$e" -v s="$s" 'BEGIN { print e - s }')") $(cpu_per_gb "$(json cpu_user_s /tmp/m.json)" "$b") $(cpu_per_gb "$steady" "$b")" >>"/tmp/r.$how"
		check_verify /mnt/disk/m --loadgen-status /tmp/st >/dev/null
		rm -rf /mnt/disk/m
		rm_unload
	done
	preload
	sync
	echo 3 >/proc/sys/vm/drop_caches
	relaymap-dump read-copy dio -o /mnt/disk/rc --drain >/tmp/rc.out 2>&1 || { cat /tmp/rc.out; fail "read-copy"; }
	cat /tmp/rc.out
	# "read-copy: 61.2 MB in 0.123 s (497.6 MB/s), ... 0.11 CPU-s (...)"; bytes from the files
	# shellcheck disable=SC2012 # sizes only
	b=$(ls -l /mnt/disk/rc/cpu*.read | awk '{ s += $5 } END { print s }')
	c=$(awk '{ for (i = 2; i <= NF; i++) if ($i == "CPU-s") { print $(i - 1); exit } }' /tmp/rc.out)
	m=$(awk '{ for (i = 2; i <= NF; i++) if ($i == "MB/s),") { v = $(i - 1); sub(/^\(/, "", v); print v; exit } }' /tmp/rc.out)
	echo "  run $run read+write: $b bytes, $c CPU-s, $(cpu_per_gb "$c" "$b") CPU-s/GB"
	u=$(awk '{ for (i = 2; i <= NF; i++) if ($i == "user,") { v = $(i - 1); sub(/^\(/, "", v); print v; exit } }' /tmp/rc.out)
	echo "$(cpu_per_gb "$c" "$b") $m $(cpu_per_gb "$u" "$b") $(cpu_per_gb "$c" "$b")" >>/tmp/r.read
	rm -rf /mnt/disk/rc
	rm_unload
done
echo "cpu-per-gb: kernel $(uname -r), ext4 on virtio, QEMU TCG, $ncpu x 32 x 1 MiB preloaded, 128-byte records, median of 3:"
for how in direct writev direct-exit writev-exit direct-raw read; do
	u=$(awk '{ print $3 }' "/tmp/r.$how" | median)
	st=$(awk '{ print $4 }' "/tmp/r.$how" | median)
	c=$(awk '{ print $1 }' "/tmp/r.$how" | median)
	m=$(awk '{ print $2 }' "/tmp/r.$how" | median)
	echo "cpu-per-gb: $how $c CPU-s/GB ($u in userspace; $st without the setup), $m MB/s"
done
echo "ok: --direct verified on ext4; CPU per GB measured"
