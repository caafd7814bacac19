# shellcheck shell=sh
# /relaymap/lib.sh - helpers for guest tests (busybox sh). Source it:
#   . /relaymap/lib.sh
# Documented in tests/vm/README.md ("Test helpers").

RM_KO=/relaymap/kmod/relaymap.ko
LG_KO=/relaymap/kmod/relaymap_loadgen.ko
RM_DEBUGFS=/sys/kernel/debug/relaymap
LG_DEBUGFS=/sys/kernel/debug/relaymap_loadgen
LG_PARAMS=/sys/module/relaymap_loadgen/parameters

# fail MSG: print "FAIL: MSG" and end the test with status 1.
fail() {
	echo "FAIL: $*"
	exit 1
}

# skip REASON: print "skipping: REASON" and end the test with status 77.
skip() {
	echo "skipping: $*"
	exit 77
}

# rm_load [param=value...]: insmod relaymap.ko.
# shellcheck disable=SC2120 # parameters are optional
rm_load() {
	[ -f "$RM_KO" ] || fail "$RM_KO is not in the initramfs (kmod/ not built?)"
	insmod "$RM_KO" "$@" || fail "insmod relaymap.ko $*"
}

# rm_unload: rmmod the load generator (if loaded) and relaymap.
rm_unload() {
	if grep -q '^relaymap_loadgen ' /proc/modules; then
		rmmod relaymap_loadgen || fail "rmmod relaymap_loadgen"
	fi
	if grep -q '^relaymap ' /proc/modules; then
		rmmod relaymap || fail "rmmod relaymap"
	fi
}

# lg_load [param=value...]: insmod relaymap_loadgen.ko (loads relaymap.ko
# first with default parameters if it is not loaded yet).
# shellcheck disable=SC2119 # rm_load without parameters
lg_load() {
	[ -f "$LG_KO" ] || fail "$LG_KO is not in the initramfs (kmod/ not built?)"
	grep -q '^relaymap ' /proc/modules || rm_load
	insmod "$LG_KO" "$@" || fail "insmod relaymap_loadgen.ko $*"
}

# lg_start / lg_stop: write start/stop to the load generator's control file
# (stop returns when every writer thread has ended).
lg_start() {
	echo start >"$LG_DEBUGFS/control" || fail "loadgen start"
}
lg_stop() {
	echo stop >"$LG_DEBUGFS/control" || fail "loadgen stop"
}

# lg_wait_idle [MAX_S]: wait until the load generator's writers have all
# ended (state idle); fail after MAX_S seconds (default 240).
lg_wait_idle() {
	_max=$((${1:-240} * 10))
	_i=0
	while [ "$(lg_status | awk '$1 == "state" { print $2 }')" != idle ]; do
		sleep 0.1
		_i=$((_i + 1))
		[ "$_i" -lt "$_max" ] || fail "load generator still running after ${1:-240} s"
	done
}

# check_verify DUMP ARGS...: relaymap-dump verify DUMP ARGS, printed; fail
# unless it exits 0 and reports 0 lost, 0 corrupt.
check_verify() {
	_d=$1
	shift
	relaymap-dump verify "$_d" "$@" >/tmp/verify.out
	_rc=$?
	cat /tmp/verify.out
	[ "$_rc" = 0 ] || fail "verify $_d exited $_rc"
	grep -q ' 0 lost, 0 corrupt$' /tmp/verify.out || fail "verify $_d: loss or corruption"
}

# lg_status: print the load generator's status file.
lg_status() {
	cat "$LG_DEBUGFS/status" || fail "read $LG_DEBUGFS/status"
}

# lg_stat FIELD [cpu N|total]: one number from the status, e.g.
#   lg_stat written total   lg_stat dropped cpu 1
lg_stat() {
	_f=$1
	shift
	_sel=${*:-total}
	lg_status | awk -v f="$_f" -v sel="$_sel" '
		{ key = ($1 == "cpu") ? $1 " " $2 : $1
		  if (key == sel) for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}

# lg_set KEY VALUE: set a load generator parameter at run time.
lg_set() {
	echo "$2" >"$LG_PARAMS/$1" || fail "set loadgen parameter $1=$2"
}

# dump_wait PID WHAT ERRFILE: wait for a background relaymap-dump; unless
# it exits 0, show ERRFILE and fail with its exit status.
dump_wait() {
	wait "$1"
	_rc=$?
	[ "$_rc" = 0 ] || { cat "$3"; fail "relaymap-dump exited $_rc $2"; }
}

# rm_dir NAME: print the debugfs folder of channel NAME.
rm_dir() {
	echo "$RM_DEBUGFS/$1"
}

# file_mode PATH: print the permission bits in octal, e.g. 0400.
file_mode() {
	printf '0%s\n' "$(stat -c %a "$1")"
}

# assert_eq GOT WANT MSG: fail unless GOT = WANT (string compare).
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}

# ffi_run PROGRAM MODE COUNT SUBBUF_SIZE N_SUBBUFS: a fresh channel "ffi",
# the consumer PROGRAM started on it, the load generator writes COUNT
# records per CPU in MODE (lossless|drop), then stops; SIGTERM makes the
# consumer flush, drain and report. Its counts must equal the load
# generator's status.
ffi_run() {
	prog=$1 mode=$2 count=$3 sbs=$4 nsb=$5
	command -v "$prog" >/dev/null || fail "$prog not built (build.d/60-ffi.sh)"
	echo "--- $prog: load generator $mode, $count records per CPU, $nsb x $sbs bytes"
	rm_load name=ffi subbuf_size="$sbs" n_subbufs="$nsb"
	lg_load channel=ffi count="$count" mode="$mode"
	out=./out.$prog.$mode
	"$prog" --dir "$(rm_dir ffi)" >"$out" 2>&1 &
	pid=$!
	i=0
	until grep -q '^consuming' "$out"; do
		i=$((i + 1))
		if [ "$i" -gt 300 ] || ! kill -0 "$pid" 2>/dev/null; then
			cat "$out"
			fail "$prog did not start"
		fi
		sleep 0.1
	done
	lg_start
	lg_wait_idle 240
	lg_status
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	sed 's/^/  /' "$out"
	[ "$rc" -eq 0 ] || fail "$prog exited with status $rc"
	got=$(awk '$1 == "total" { print $3 }' "$out")
	assert_eq "$got" "$(lg_stat written total)" "$prog: records received vs load generator written"
	for c in $(lg_status | awk '$1 == "cpu" { print $2 }'); do
		assert_eq "$(awk -v c="$c" '$1 == "cpu" && $2 == c { print $4 }' "$out")" \
			"$(lg_stat written cpu "$c")" "$prog: records of cpu $c vs load generator written"
	done
	lost=$(awk '$1 == "loss" { print $3 }' "$out")
	assert_eq "$lost" "$(lg_stat dropped total)" "$prog: loss.records_dropped vs load generator dropped"
	if [ "$mode" = lossless ]; then
		assert_eq "$lost" 0 "$prog: records dropped in lossless mode"
	elif [ "$lost" -eq 0 ]; then
		fail "$prog: drop mode into $nsb x $sbs bytes dropped nothing"
	fi
	echo "ok: $prog: $got records = load generator written, loss.records_dropped $lost = load generator dropped"
	lg_stop
	rm_unload
}
