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

# lg_start / lg_stop: start or stop the load generator (stop returns when
# every writer thread has ended). Through its sysfs parameter `run`, which
# works without debugfs and under lockdown; the debugfs control file of
# older builds otherwise.
lg_start() {
	if [ -e "$LG_PARAMS/run" ]; then
		echo 1 >"$LG_PARAMS/run" || fail "loadgen start"
	else
		echo start >"$LG_DEBUGFS/control" || fail "loadgen start"
	fi
}
lg_stop() {
	if [ -e "$LG_PARAMS/run" ]; then
		echo 0 >"$LG_PARAMS/run" || fail "loadgen stop"
	else
		echo stop >"$LG_DEBUGFS/control" || fail "loadgen stop"
	fi
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
	if [ -e "$LG_PARAMS/status" ]; then
		cat "$LG_PARAMS/status" || fail "read $LG_PARAMS/status"
	else
		cat "$LG_DEBUGFS/status" || fail "read $LG_DEBUGFS/status"
	fi
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

# proc_alive PID: the process exists and is not a zombie (kill -0 succeeds
# on a zombie child that was not waited for yet).
proc_alive() {
	[ -r "/proc/$1/status" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# wait_line FILE REGEX MAX_S [PID]: wait (0.1 s steps) until a line of FILE
# matches the extended REGEX; fail after MAX_S seconds, or as soon as PID
# (if given) has exited, printing FILE.
wait_line() {
	_i=0
	until grep -qE -- "$2" "$1" 2>/dev/null; do
		if [ -n "${4:-}" ] && ! proc_alive "$4"; then
			# One last look: it may have printed the line, then exited.
			grep -qE -- "$2" "$1" 2>/dev/null && return 0
			cat "$1" 2>/dev/null
			fail "pid $4 exited before '$2' appeared in $1"
		fi
		_i=$((_i + 1))
		[ "$_i" -le $(($3 * 10)) ] || { cat "$1" 2>/dev/null; fail "'$2' not in $1 after $3 s"; }
		sleep 0.1
	done
}

# dump_start ERRFILE ARGS...: relaymap-dump ARGS in the background, stderr
# to ERRFILE (stdout to $DUMP_OUT if set), its pid in $pid; returns once it
# holds every CPU of its channel and its signal handlers are installed
# ("relaymap-dump: consuming ..." on stderr).
dump_start() {
	_err=$1
	shift
	# Emptied here, not only by the child's redirection: wait_line must not
	# see an earlier dumper's line before the child has opened the file.
	: >"$_err"
	if [ -n "${DUMP_OUT:-}" ]; then
		relaymap-dump "$@" >"$DUMP_OUT" 2>"$_err" &
	else
		relaymap-dump "$@" 2>"$_err" &
	fi
	pid=$!
	wait_line "$_err" '^relaymap-dump: consuming ' 60 "$pid"
}

# ffi_start PROGRAM OUT ARGS...: start the C/C++ consumer PROGRAM ARGS in
# the background with stdout+stderr to OUT, set $pid, and wait until it
# prints its "consuming" line.
ffi_start() {
	_fp=$1 _fo=$2
	shift 2
	: >"$_fo"
	"$_fp" "$@" >"$_fo" 2>&1 &
	pid=$!
	wait_line "$_fo" '^consuming' 30 "$pid"
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
	ffi_start "$prog" "$out" --name ffi
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

# lossless_consumer_run PROG CHANNEL: the C/C++ consumer PROG (e.g.
# relaymap-consumer) opens CHANNEL by name; the load generator (loaded,
# idle, lossless, with a count) runs once; SIGTERM makes PROG flush, drain
# and report. Fails unless it received exactly what the load generator
# wrote, with 0 lost.
lossless_consumer_run() {
	command -v "$1" >/dev/null || fail "$1 not built (build.d/60-ffi.sh)"
	ffi_start "$1" "./out.$1.$2" --name "$2"
	lg_start
	lg_wait_idle 240
	kill -TERM "$pid"
	_rc=0
	wait "$pid" || _rc=$?
	sed 's/^/  /' "./out.$1.$2"
	[ "$_rc" -eq 0 ] || fail "$1 exited with status $_rc"
	_got=$(awk '$1 == "total" { print $3 }' "./out.$1.$2")
	assert_eq "$_got" "$(lg_stat written total)" "$1: records received vs load generator written"
	assert_eq "$(awk '$1 == "loss" { print $3 }' "./out.$1.$2")" 0 "$1: records lost"
	echo "ok: $1: $_got records of $2, lossless"
}

# lossless_dump_run CHANNEL DIR [PREFIX...]: relaymap-dump CHANNEL -o DIR
# (run through PREFIX, e.g. rmdump_dropuid UID GID, if given), the load
# generator (loaded, idle, lossless, with a count) runs once, SIGINT; then
# verify DIR against the load generator's status: every record, 0 lost,
# 0 corrupt.
lossless_dump_run() {
	_ch=$1 _dir=$2
	shift 2
	: >/tmp/dump.err
	"$@" relaymap-dump "$_ch" -o "$_dir" 2>/tmp/dump.err &
	pid=$!
	wait_line /tmp/dump.err '^relaymap-dump: consuming ' 60 "$pid"
	lg_start
	lg_wait_idle 240
	lg_status >/tmp/status
	kill -INT "$pid"
	dump_wait "$pid" "($_ch)" /tmp/dump.err
	cat /tmp/dump.err
	_total=$(awk '$1 == "total" { print $5 }' /tmp/status)
	check_verify "$_dir" --loadgen-status /tmp/status
	grep -q "^verified $_total records, 0 lost, 0 corrupt\$" /tmp/verify.out ||
		fail "verify $_dir: want $_total records, 0 lost, 0 corrupt"
	echo "ok: relaymap-dump: $_total records of $_ch dumped and verified"
}

# need_disk: succeeds when the ext4 disk of a `# boot: rmvm.disk=1` boot is
# mounted at /mnt/disk (/init mounts it; see tests/vm/README.md).
need_disk() {
	grep -q ' /mnt/disk ext4 ' /proc/mounts
}
