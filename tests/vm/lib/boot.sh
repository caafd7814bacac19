# shellcheck shell=bash
# tests/vm/lib/boot.sh - boot one kernel under QEMU and turn its serial
# console into PASS/FAIL/SKIP lines.

QEMU_TIMEOUT=${RELAYMAP_VM_TIMEOUT:-1200} # whole boot, seconds
QEMU_MEM=${RELAYMAP_VM_MEM:-1024}
TEST_TIMEOUT=${RELAYMAP_VM_TEST_TIMEOUT:-300}
OUTPUT_LINES=${RELAYMAP_VM_OUTPUT_LINES:-40} # last lines of a failed test's output shown

# write_qemu_script FILE MODE ONLY [GROUP]: the exact QEMU command, kept
# with --keep so a run can be repeated by hand. GROUP is a boot group (see
# test_group): "main", or extra kernel arguments joined with commas, which
# are appended to the command line.
write_qemu_script() {
	local f=$1 mode=$2 only=$3 group=${4:-main} dir
	dir=$(dirname "$f")
	# -cpu qemu64,-cx16: QEMU 7.2's default CPU crashes 6.12 in ~1 of 3
	# boots at -smp 2 (see KERNEL-NOTES.md). watchdog_thresh and the RCU
	# stall timeout are raised because TCG on a shared 2-core host can
	# starve a vCPU for seconds; a real lockup still shows up, later.
	# tsc=reliable: no clocksource watchdog and no TSC sync check. Under a
	# loaded host the watchdog marks the TSC unstable mid-test, which flips
	# the sched_clock static key; live text patching under MTTCG then hit a
	# stray int3 and panicked 7.2 (seen: "Oops: int3" in sched_clock_cpu from
	# clocksource_watchdog_work). TCG's TSC is one clock for all vCPUs.
	local append="console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init tsc=reliable watchdog_thresh=60"
	append+=" rcupdate.rcu_cpu_stall_timeout=120 rmvm.mode=$mode rmvm.only=$only rmvm.timeout=$TEST_TIMEOUT"
	append+=" rmvm.group=$group rmvm.script=${SCRIPT:-demo}"
	# RELAYMAP_VM_APPEND: extra kernel arguments for every boot of the run
	# (e.g. a test's own knobs, such as 29-ioctl-fuzz's rmvm.fuzz_ioctls=N).
	[ -z "${RELAYMAP_VM_APPEND:-}" ] || append+=" $RELAYMAP_VM_APPEND"
	[ "$group" = main ] || append+=" ${group//,/ }"
	# rmvm.disk=1: a virtio disk with a fresh ext4 file system (made by
	# make_disk), mounted at /mnt/disk in the guest.
	local drive=""
	case ",$group," in *,rmvm.disk=1,*) drive="-drive file=$dir/disk-${group//[^A-Za-z0-9._-]/_}.img,if=virtio,format=raw" ;; esac
	cat >"$f" <<EOF
#!/bin/sh
echo \$\$ >'$dir/qemu.pid'
exec timeout -k 10 $QEMU_TIMEOUT qemu-system-x86_64 -nodefaults -no-user-config -accel tcg \\
	-cpu qemu64,-cx16 -smp 2 -m $QEMU_MEM -display none -serial stdio -no-reboot \\
	-kernel '$VMLINUZ' -initrd '$dir/initramfs.cpio' $drive \\
	-append '$append' </dev/null
EOF
	chmod +x "$f"
}

# stop_qemu WORK: end a QEMU still running from WORK (the script was
# interrupted). timeout(1) puts QEMU in its own process group, so Ctrl-C
# does not reach it; TERM to timeout is passed on to QEMU.
stop_qemu() {
	local pid
	pid=$(cat "$1/qemu.pid" 2>/dev/null) || return 0
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = timeout ]; then
		kill -TERM "$pid" 2>/dev/null || true
	fi
}

# print_output LINES...: a failed test's output, indented; long output is
# trimmed to its first 10 and last OUTPUT_LINES lines (the log has it all).
print_output() {
	local n=$# l i=0
	for l in "$@"; do
		i=$((i + 1))
		if [ "$n" -gt $((OUTPUT_LINES + 20)) ] && [ "$i" -gt 10 ] && [ "$i" -le $((n - OUTPUT_LINES)) ]; then
			[ "$i" -eq 11 ] && printf '    ... (%d lines, see %s)\n' "$((n - OUTPUT_LINES - 10))" "${LOG#"$REPO"/}"
			continue
		fi
		printf '    %s\n' "$l"
	done
}

# make_disk WORK GROUP: a fresh 4 GiB sparse image with an ext4 file system
# for a boot group with rmvm.disk=1; prints its path.
make_disk() {
	local img="$1/disk-${2//[^A-Za-z0-9._-]/_}.img"
	rm -f "$img"
	truncate -s 4G "$img" && mkfs.ext4 -q -F -L rmvm "$img" >/dev/null || return 1
	echo "$img"
}

# run_host_checks K GROUP IMG: after a rmvm.disk=1 boot, copy what each
# test of the group left in /mnt/disk/export/<test>/ out of the image
# (e2fsprogs' debugfs, no mount needed) to target/vm/<K>/export/<test>/,
# and run tests/vm/host.d/<test>.sh DIR KERNEL on the host if it exists:
# its result is one more PASS/FAIL/SKIP line, "<K>/<test>:host".
run_host_checks() {
	local k=$1 img=$3 t dest out rc
	local -a lines
	for t in "${EXPECTED[@]}"; do
		[ -f "$REPO/tests/vm/host.d/$t.sh" ] || continue
		dest="$REPO/target/vm/$k/export/$t"
		rm -rf "$dest" && mkdir -p "$(dirname "$dest")"
		debugfs -R "rdump /export/$t $(dirname "$dest")" "$img" >/dev/null 2>&1 || true
		out=$(mktemp)
		rc=0
		if [ -d "$dest" ]; then
			bash "$REPO/tests/vm/host.d/$t.sh" "$dest" "$k" >"$out" 2>&1 || rc=$?
		else
			echo "the guest test left no /mnt/disk/export/$t" >"$out"
			rc=1
		fi
		case $rc in
		0)
			PASSED=$((PASSED + 1))
			echo "PASS $k/$t:host"
			;;
		77)
			SKIPPED=$((SKIPPED + 1))
			echo "SKIP $k/$t:host: $(sed -n 's/^.*skipping: //p' "$out" | tail -n 1)"
			;;
		*)
			FAILED=$((FAILED + 1))
			echo "FAIL $k/$t:host: exit status $rc"
			mapfile -t lines <"$out"
			print_output "${lines[@]}"
			;;
		esac
		rm -f "$out"
	done
}

# test_group FILE: the boot group of a guest test. A test whose header has
# a line "# boot: ARGS" (e.g. "# boot: debugfs=off") needs a boot of its
# own with those kernel arguments; tests with the same ARGS share one. The
# group's name is ARGS with spaces turned into commas; "main" for the rest.
test_group() {
	local args
	args=$(sed -n 's/^#[[:space:]]*boot:[[:space:]]*//p' "$1" | head -n 1)
	args=$(echo "$args" | tr -s ' \t' ',' | sed 's/^,//; s/,$//')
	echo "${args:-main}"
}

# boot_and_parse K WORK MODE [SCRIPT] [LOGNAME]: boot; print results live; update PASSED,
# FAILED, SKIPPED; in demo mode stream the demo's output and set DEMO_RC.
# EXPECTED (array) lists the tests that must report.
# With BOOT_RETRY=1, a VM that dies (panic, timeout) before any test that
# may load a relaymap module began (only 00-boot, which never does) counts
# nothing: BOOT_FLAKE says why and the console log is kept as
# <K>.first-boot.log, so that run_kernel boots once more. Such a death is
# the emulated kernel's or QEMU's, not relaymap's; it is reported, never
# silently passed over.
boot_and_parse() {
	local k=$1 work=$2 mode=$3 script=${4:-$2/qemu.sh} logname=${5:-$1}
	local p0=$PASSED f0=$FAILED s0=$SKIPPED module_used=0
	BOOT_FLAKE=""
	LOG="$REPO/target/vm-logs/$logname.log"
	if [ "$mode" = demo ]; then LOG="$REPO/target/vm-logs/$k-${SCRIPT:-demo}.log"; fi
	# Written under a per-run name (tail -f target/vm-logs/*.running.*), then
	# renamed: runs of other engineers in the same repo cannot mix into it.
	LIVE_LOG="$LOG.running.$$"
	mkdir -p "$(dirname "$LOG")"
	: >"$LIVE_LOG"
	local -A seen=()
	local line cur="" out=() name status rest in_demo=0 done=0 qrc='?'
	DEMO_RC=""
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$LIVE_LOG"
		case $line in
		*'@@RMVM:BEGIN '*)
			rest=${line#*@@RMVM:BEGIN }
			cur=${rest%% *}
			out=()
			[ "$cur" = 00-boot ] || module_used=1
			;;
		*'@@RMVM:RESULT '*)
			read -r name status rest <<<"${line#*@@RMVM:RESULT }"
			seen[$name]=1
			case $status in
			PASS)
				PASSED=$((PASSED + 1))
				echo "PASS $k/$name"
				;;
			SKIP)
				SKIPPED=$((SKIPPED + 1))
				echo "SKIP $k/$name: ${rest#* }"
				;;
			*)
				FAILED=$((FAILED + 1))
				echo "FAIL $k/$name: ${rest#* }"
				print_output "${out[@]}"
				;;
			esac
			cur="" out=()
			;;
		*'@@RMVM:DONE'*) done=1 ;;
		*'@@RMVM:QEMU-RC '*) qrc=${line#*@@RMVM:QEMU-RC } ;;
		*'@@RMVM:KERNEL '*) say "$k: booted ${line#*@@RMVM:KERNEL }" ;;
		*'@@RMVM:DEMO-BEGIN'*) in_demo=1 ;;
		*'@@RMVM:DEMO-END '*)
			in_demo=0
			DEMO_RC=${line#*@@RMVM:DEMO-END }
			;;
		*)
			if [ -n "$cur" ]; then out+=("$line"); fi
			if [ "$in_demo" = 1 ]; then printf '%s\n' "$line"; fi
			;;
		esac
	done < <(
		rc=0
		"$script" 2>&1 || rc=$?
		printf '@@RMVM:QEMU-RC %s\n' "$rc"
	)
	rm -f "$work/qemu.pid" # so cleanup never signals a reused pid
	local why="VM ended early (qemu rc $qrc)"
	case $qrc in 124 | 137) why="VM timed out after ${QEMU_TIMEOUT}s (RELAYMAP_VM_TIMEOUT)" ;; esac
	if grep -q 'Kernel panic' "$LIVE_LOG"; then why="kernel panic (qemu rc $qrc)"; fi
	if [ "$mode" = demo ]; then
		if [ -z "$DEMO_RC" ]; then
			say "$k: demo did not finish: $why; console tail (${LOG#"$REPO"/}):"
			tail -n 30 "$LIVE_LOG" | sed 's/^/  | /' >&2
			DEMO_RC=1
		fi
		finish_log
		return 0
	fi
	if [ "$done" != 1 ] && [ "$module_used" = 0 ] && [ "${BOOT_RETRY:-0}" = 1 ]; then
		# shellcheck disable=SC2034 # read by tests/vm/run
		BOOT_FLAKE=$why
		PASSED=$p0 FAILED=$f0 SKIPPED=$s0
		cp -f "$LIVE_LOG" "${LOG%.log}.first-boot.log"
		finish_log
		return 0
	fi
	local t first=1
	for t in "${EXPECTED[@]}"; do
		[ -n "${seen[$t]:-}" ] && continue
		FAILED=$((FAILED + 1))
		echo "FAIL $k/$t: no result: $why"
		if [ "$first" = 1 ]; then
			# The test that was running when the VM died: what the console
			# showed since it began (kernel messages; its own output is
			# only printed when it ends), else the console tail.
			if [ "${#out[@]}" -gt 0 ]; then
				print_output "${out[@]}"
			else
				echo "    --- console tail (${LOG#"$REPO"/}) ---"
				tail -n 25 "$LIVE_LOG" | sed 's/^/    /'
			fi
			first=0
		fi
	done
	if [ "$done" != 1 ] && [ "${#EXPECTED[@]}" -eq 0 ]; then
		FAILED=$((FAILED + 1))
		echo "FAIL $k/boot: $why"
	fi
	if [ "$qrc" != 0 ] && [ "$done" = 1 ]; then
		say "$k: warning: qemu exited with rc $qrc after the tests finished"
	fi
	finish_log
}

# finish_log: give the console log of this run its final name.
finish_log() {
	if [ -n "${LIVE_LOG:-}" ] && [ -e "$LIVE_LOG" ]; then mv -f "$LIVE_LOG" "$LOG"; fi
	LIVE_LOG=""
}
