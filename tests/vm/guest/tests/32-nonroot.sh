#!/bin/sh
# Non-root consumers (kmod/relaymap_dev.c "Access"). Default: /dev/relaymap
# is 0600 root:root and uid 1000 gets EACCES; mode=0640 sets the node's
# mode. With group=4242 the node is 0666 and open() admits members of 4242
# only: a uid with 4242 as a supplementary group, and one with it as its
# primary gid, open /dev/relaymap, a channel, every CPU's consumer fd,
# map them (never writable) and FLUSH; a uid outside the group gets EACCES.
# The in-group uid then consumes a lossless run of 20000 records per CPU
# with every record verified (received == loadgen written, 0 dropped).
# The debugfs view stays root-only: cpuN 0400, control 0600, and the
# non-root users cannot open either.
# timeout: 240
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

G=4242
IN_SUPP="1000 1000 -G $G"
IN_PRIM="1002 $G"
OUT="1001 1001 -G 1001,4243"

echo "--- default: root only"
rm_load name=nr subbuf_size=16384 n_subbufs=8
assert_eq "$(file_mode /dev/relaymap)" 0600 "mode of /dev/relaymap without group="
assert_eq "$(stat -c '%u:%g' /dev/relaymap)" 0:0 "owner of /dev/relaymap"
# shellcheck disable=SC2086 # uid, gid and -G list as words
rmck_asuser $IN_SUPP rmck_drain -n nr --expect-denied ||
	fail "uid 1000 (group $G, but no group= given) was not refused"
rmck_drain -n nr --probe || fail "root cannot use /dev/relaymap"
rm_unload

echo "--- mode=0640"
rm_load name=nr subbuf_size=16384 n_subbufs=8 mode=0640
assert_eq "$(file_mode /dev/relaymap)" 0640 "mode of /dev/relaymap with mode=0640"
rm_unload

echo "--- group=$G"
rm_load name=nr subbuf_size=16384 n_subbufs=8 group=$G
echo "/dev/relaymap: mode $(file_mode /dev/relaymap), owner $(stat -c '%u:%g' /dev/relaymap)"
assert_eq "$(file_mode /dev/relaymap)" 0666 "mode of /dev/relaymap with group= (open() checks the group)"
d=$(rm_dir nr)
for f in cpu0 cpu1; do
	assert_eq "$(file_mode "$d/$f")" 0400 "mode of $d/$f"
done
assert_eq "$(file_mode "$d/control")" 0600 "mode of $d/control"
assert_eq "$(file_mode /sys/kernel/debug)" 0700 "mode of the debugfs mount"
# shellcheck disable=SC2086
rmck_asuser $IN_SUPP rmck_drain -n nr --probe ||
	fail "uid 1000 with supplementary group $G cannot open /dev/relaymap, a channel and its consumers"
# shellcheck disable=SC2086
rmck_asuser $IN_PRIM rmck_drain -n nr --probe ||
	fail "uid 1002 with primary group $G cannot open /dev/relaymap, a channel and its consumers"
# shellcheck disable=SC2086
rmck_asuser $OUT rmck_drain -n nr --expect-denied ||
	fail "uid 1001 outside group $G was not refused"
rmck_drain -n nr --probe || fail "root (CAP_SYS_ADMIN) refused with group="

echo "--- a lossless run consumed by uid 1000 (group $G)"
lg_load channel=nr count=20000 mode=lossless
out=./out.nonroot
# shellcheck disable=SC2086
rmck_asuser $IN_SUPP rmck_drain -n nr --expect 20000 --timeout-s 150 >"$out" 2>&1 &
pid=$!
wait_line "$out" '^consuming nr' 30 "$pid"
lg_start
rc=0
wait "$pid" || rc=$?
sed 's/^/  /' "$out"
[ "$rc" = 0 ] || fail "the non-root consumer exited $rc"
lg_wait_idle 60
lg_status
for c in $(lg_status | awk '$1 == "cpu" { print $2 }'); do
	assert_eq "$(lg_stat written cpu "$c")" 20000 "loadgen written on cpu $c"
	assert_eq "$(lg_stat dropped cpu "$c")" 0 "loadgen dropped on cpu $c"
done
grep -q '^rmck_drain: SUMMARY uid=1000 records_per_cpu=20000' "$out" ||
	fail "the consumer's summary does not say uid 1000, 20000 records per CPU"
lg_stop
rm_unload
echo "ok: root-only by default; group=$G admits its members (supplementary and primary) and refuses others; a non-root member consumed 20000 records per CPU losslessly; debugfs stays root-only"
