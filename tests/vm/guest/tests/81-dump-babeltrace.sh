#!/bin/sh
# A dump the host's babeltrace2 reads (issue 10). This boot has an ext4
# disk at /mnt/disk; what this test leaves in /mnt/disk/export/<test>/ is
# copied to the host, where tests/vm/host.d/81-dump-babeltrace.sh runs
# Debian's babeltrace2 on it and compares with the counts written here.
#  drop/:      drop mode, rotated files (--rotate-size 128K), with kernel
#              drops (the dumper is stopped with SIGSTOP while the load
#              generator overfills the buffer), then
#              printf records (method=printf, lossless), which also close a
#              packet that carries the final drop count. counts: records
#              written, the kernel's drops, printf records.
#  overwrite/: overwrite mode with laps (the dumper is stopped while the
#              load generator laps the buffer, packets before and after).
#              counts: the laps the dumper saw (sub-buffers overwritten
#              before it got them), the kernel's lapped count (which also
#              counts a sub-buffer overwritten after the dumper copied it
#              but before it handed it back), the records the dumper wrote.
# The dumps are made with the README's command line (relaymap-dump NAME -o DIR).
# boot: rmvm.disk=1
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

T=81-dump-babeltrace
X=/mnt/disk/export/$T
need_disk || fail "no ext4 disk at /mnt/disk (rmvm.disk=1)"
mkdir -p "$X"
json() { sed -n "s/^  \"$1\": \\([0-9.]*\\),\$/\\1/p" "$2" | head -n 1; }
stat_col() { # CH COLUMN: a column of `relaymap stat CH`, summed over CPUs
	relaymap stat "$1" | awk -v c="$2" '$1 ~ /^[0-9]+$/ { s += $c } END { print s + 0 }'
}
# wait_packets DIR: until every CPU's file holds a packet (60 s).
wait_packets() {
	_i=0
	for _c in $(awk '$1 == "cpu" { print $2 }' /tmp/ncpus); do
		until [ -s "$1/cpu$_c.out" ]; do
			_i=$((_i + 1))
			[ "$_i" -le 600 ] || fail "$1/cpu$_c.out: no packet after 60 s"
			sleep 0.1
		done
	done
}

echo "--- drop mode"
rm_load name=bt subbuf_size=65536 n_subbufs=4
lg_load channel=bt record_size=64 mode=drop count=20000
# Rotated (the README's --rotate-size): babeltrace2 joins the files of
# a CPU into one stream (same stream_instance_id).
dump_start /tmp/d.err bt -o "$X/drop" --rotate-size 128K
kill -STOP "$pid"
lg_start
lg_wait_idle 120
lg_status | tee /tmp/s1
kill -CONT "$pid"
w1=$(awk '$1 == "total" { print $5 }' /tmp/s1)
d1=$(awk '$1 == "total" { print $7 }' /tmp/s1)
[ "$d1" -gt 0 ] || fail "the load generator dropped nothing"
lg_set method printf
lg_set mode lossless
lg_set count 50
lg_start
lg_wait_idle 120
lg_status | tee /tmp/s2
w2=$(awk '$1 == "total" { print $5 }' /tmp/s2)
kill -INT "$pid"
dump_wait "$pid" "drop mode" /tmp/d.err
cat /tmp/d.err
[ -f "$X/drop/cpu0.out.1" ] || fail "no rotated file cpu0.out.1"
kdrops=$(stat_col bt 5)
assert_eq "$kdrops" "$d1" "kernel drops vs load generator dropped"
relaymap-dump verify "$X/drop" | tail -n 2
{
	echo "written $((w1 + w2))"
	echo "dropped $kdrops"
	echo "printf $w2"
} | tee "$X/drop.counts"
rm_unload

echo "--- overwrite mode"
rm_load name=bto subbuf_size=65536 n_subbufs=4 overwrite=1
lg_load channel=bto record_size=64 mode=lossless count=3000
dump_start /tmp/o.err bto -o "$X/overwrite" --flush-interval 100ms --stats-json /tmp/o.json
lg_start
lg_wait_idle 120
lg_status >/tmp/ncpus
wait_packets "$X/overwrite"
kill -STOP "$pid"
lg_set count 40000
lg_start
lg_wait_idle 120
kill -CONT "$pid"
kill -INT "$pid"
dump_wait "$pid" "overwrite mode" /tmp/o.err
cat /tmp/o.err
laps=$(stat_col bto 7)
[ "$laps" -gt 0 ] || fail "no laps in overwrite mode"
{
	echo "lapped $(json subbufs_lapped /tmp/o.json)"
	echo "kernel_lapped $laps"
	echo "records $(json records /tmp/o.json)"
} | tee "$X/overwrite.counts"
rm_unload
ls -l "$X" "$X/drop" "$X/overwrite"
echo "ok: dumps for babeltrace2 in $X (checked on the host)"
