#!/bin/sh
# C API from C++, static library: the C++ consumer (examples/c/consumer.cpp:
# RAII wrapper relaymap.hpp, one sub-buffer at a time with
# relaymap_channel_next, views handed back by their destructors; linked
# statically by build.d/60-ffi.sh) reads while the load generator writes a
# fixed count per CPU. Lossless: record counts per CPU and in total equal
# the load generator's `written`, all verified, nothing dropped. Drop mode:
# received = `written`, loss.records_dropped = `dropped`.
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

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
	i=0
	while [ "$(lg_status | awk '$1 == "state" { print $2 }')" != idle ]; do
		i=$((i + 1))
		if [ "$i" -gt 2400 ]; then
			lg_status
			kill "$pid"
			fail "load generator still running after 240 s"
		fi
		sleep 0.1
	done
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

ffi_run relaymap-consumer-cpp lossless 50000 16384 8
ffi_run relaymap-consumer-cpp drop 20000 4096 2
echo "ok: C++ consumer counts equal the load generator's"
