#!/bin/bash
# Host side of tests/vm/guest/tests/81-dump-babeltrace.sh: DIR is what the
# guest left in /mnt/disk/export/81-dump-babeltrace, KERNEL the kernel.
# Runs Debian's babeltrace2 (installed here if missing; CI runs as root) on
# both dumps and checks against the guest's counts:
#   drop/:      events printed = records written; timestamps non-decreasing
#               in the merged output; discarded events = the kernel's drops;
#               every printf record shown as text;
#   overwrite/: discarded packets = the laps (sub-buffers overwritten
#               before the dumper got them; the kernel's count is at least
#               that); events printed = records the dumper wrote.
set -euo pipefail
dir=$1 kernel=$2

if ! command -v babeltrace2 >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q babeltrace2 >/dev/null ||
			{ echo "apt-get install babeltrace2 failed"; exit 1; }
	else
		echo "skipping: babeltrace2 is not installed and this is not root (apt-get install babeltrace2)"
		exit 77
	fi
fi
echo "$kernel: $(babeltrace2 --version | head -n 1)"
num() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
fail() {
	echo "FAIL: $*"
	exit 1
}

# discarded WHAT FILE: sum of N over "WARNING: Tracer discarded N WHAT..." lines.
discarded() {
	awk -v w="$1" '$1 == "WARNING:" && $2 == "Tracer" && $3 == "discarded" && index($5, w) == 1 { s += $4 } END { print s + 0 }' "$2"
}

# Events go to stdout, the discarded-events/packets warnings to stderr:
# kept apart (mixed, a warning can land in the middle of an event line).
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

babeltrace2 --clock-cycles "$dir/drop" >"$out" 2>"$err" || { tail -n 20 "$err"; fail "babeltrace2 failed on the drop-mode dump"; }
events=$(grep -c '^\[' "$out" || true)
written=$(num written "$dir/drop.counts")
[ "$events" = "$written" ] || fail "drop mode: babeltrace2 printed $events events, the load generator wrote $written records"
bad=$(grep '^\[' "$out" | sed 's/^\[\([0-9]*\)\].*/\1/' | awk 'NR > 1 && $1 + 0 < prev { n++ } { prev = $1 + 0 } END { print n + 0 }')
[ "$bad" = 0 ] || fail "drop mode: $bad timestamps go backwards in babeltrace2's merged output"
disc=$(discarded event "$err")
drops=$(num dropped "$dir/drop.counts")
[ "$disc" = "$drops" ] || fail "drop mode: babeltrace2 reports $disc discarded events, the kernel dropped $drops"
texts=$(grep -c 'relaymap:printf: .* text = "relaymap_loadgen cpu [0-9]* seq [0-9]*"' "$out" || true)
printfs=$(num printf "$dir/drop.counts")
[ "$texts" = "$printfs" ] || fail "drop mode: $texts printf records shown as text, $printfs written"
grep -m 1 'relaymap:printf' "$out"
echo "babeltrace2: drop mode: $events events = $written records written, timestamps non-decreasing, $disc discarded events = $drops kernel drops, $texts printf records as text"

babeltrace2 --clock-cycles "$dir/overwrite" >"$out" 2>"$err" || { tail -n 20 "$err"; fail "babeltrace2 failed on the overwrite-mode dump"; }
events=$(grep -c '^\[' "$out" || true)
records=$(num records "$dir/overwrite.counts")
[ "$events" = "$records" ] || fail "overwrite mode: babeltrace2 printed $events events, the dumper wrote $records records"
pk=$(discarded packet "$err")
laps=$(num lapped "$dir/overwrite.counts")
klaps=$(num kernel_lapped "$dir/overwrite.counts")
[ "$pk" = "$laps" ] || fail "overwrite mode: babeltrace2 reports $pk discarded packets, the dumper saw $laps laps (the kernel counted $klaps)"
[ "$pk" -gt 0 ] || fail "overwrite mode: no laps"
[ "$klaps" -ge "$laps" ] || fail "overwrite mode: the kernel counted $klaps laps, fewer than the $laps the dumper saw"
echo "babeltrace2: overwrite mode: $events events = records dumped, $pk discarded packets = $laps laps (kernel lapped count $klaps: it also counts sub-buffers overwritten after the dumper had copied them)"
