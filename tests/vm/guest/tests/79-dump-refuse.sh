#!/bin/sh
# `-o` of a directory that holds something else (issue 10): refused with
# exit 9, its content byte-for-byte unchanged, and nothing consumed from the
# channel; a directory with another channel instance's trace (the channel
# was reset) is refused the same way; --force starts a new trace there and
# keeps the foreign file; a restart into its own trace continues it.
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

# snap DIR: names (hidden ones too), sizes, mtimes and contents of DIR.
snap() {
	find "$1" | sort | while read -r f; do
		stat -c '%n %s %Y' "$f"
		[ -f "$f" ] && md5sum <"$f"
	done | md5sum
}

rm_load name=ref subbuf_size=65536 n_subbufs=8
lg_load channel=ref record_size=64 mode=lossless count=5000 # fits in 8 x 64 KiB: no consumer yet
lg_start
lg_wait_idle 120
lg_status >/tmp/st

echo "--- a foreign directory"
mkdir -p /tmp/f
echo "my notes" >/tmp/f/notes.txt
printf 'not a packet' >/tmp/f/cpu0.out
sum_before=$(snap /tmp/f)
rc=0
relaymap-dump ref -o /tmp/f --duration 0 2>/tmp/f.err || rc=$?
cat /tmp/f.err
assert_eq "$rc" 9 "exit status for a foreign directory"
grep -q 'refused, nothing was changed' /tmp/f.err || fail "the refusal does not say nothing was changed"
sum_after=$(snap /tmp/f)
assert_eq "$sum_after" "$sum_before" "the foreign directory after the refusal"
consumed=$(relaymap stat ref | awk '$1 ~ /^[0-9]+$/ { s += $3 } END { print s + 0 }')
assert_eq "$consumed" 0 "sub-buffers consumed by the refused dumper"
echo "ok: foreign directory refused (exit 9), unchanged, nothing consumed"

echo "--- --force, then a restart continues"
relaymap-dump ref -o /tmp/f --duration 0 --force 2>/tmp/f.err || { cat /tmp/f.err; fail "--force"; }
cat /tmp/f.err
grep -q -- '--force: removed 1' /tmp/f.err || fail "--force did not say what it removed"
assert_eq "$(cat /tmp/f/notes.txt)" "my notes" "the foreign file after --force"
rm /tmp/f/notes.txt
check_verify /tmp/f --loadgen-status /tmp/st
relaymap-dump ref -o /tmp/f --duration 0 2>/tmp/f.err || { cat /tmp/f.err; fail "restart"; }
grep -q 'continuing the trace' /tmp/f.err || { cat /tmp/f.err; fail "a restart into its own trace did not continue it"; }
check_verify /tmp/f --loadgen-status /tmp/st

echo "--- another instance of the channel (RESET: new uuid)"
lg_stop
rmmod relaymap_loadgen
rm_unload
rm_load name=ref subbuf_size=65536 n_subbufs=8
lg_load channel=ref record_size=64 mode=lossless count=100
lg_start
lg_wait_idle 60
sum_before=$(snap /tmp/f)
rc=0
relaymap-dump ref -o /tmp/f --duration 0 2>/tmp/f.err || rc=$?
cat /tmp/f.err
assert_eq "$rc" 9 "exit status for another instance's trace"
grep -q 'reset or recreated' /tmp/f.err || fail "the refusal does not name the reason"
assert_eq "$(snap /tmp/f)" "$sum_before" "the trace of the other instance"
rm_unload
echo "ok: foreign and other-instance directories refused unchanged; --force and restart work"
