#!/bin/sh
# The ioctl fuzzer (rmck_fuzz): random ioctls on /dev/relaymap, channel
# fds, consumer fds, the debugfs control and cpu files, with random
# command numbers (relaymap ones, the right magic with random nr/dir/size,
# fully random), sizes (0, VER0 - 1, VER0, big, a page, > a page),
# pointers (NULL, unaligned, across into a PROT_NONE page, read-only,
# inside a relay mapping, unmapped, kernel addresses, non-canonical) and
# CPUs (huge, negative, ALL), plus read(), mmap() and poll() of consumer
# fds, while the load generator writes (drop mode, both CPUs) and a
# consumer thread claims, verifies and hands back again and again. The
# program fails on an errno the ABI does not name, a write outside the
# declared struct or array, consumed > produced, a leaked fd, a CPU still
# held after every fd closed, a record that does not verify. The harness
# fails the test on WARNING/BUG/Oops/Call Trace in dmesg. Afterwards a
# fresh consumer (rmck_consume) verifies a lossless run on the same
# channel, and the module must unload (no reference leaked).
#
# Count: 100000 ioctls, bounded by 240 s. The kernel command line
# overrides both: rmvm.fuzz_ioctls=N rmvm.fuzz_seconds=S (a long run:
# tests/fuzz/README.md).
# timeout: 600
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

count=100000
secs=240
for a in $(cat /proc/cmdline); do
	case $a in
	rmvm.fuzz_ioctls=*) count=${a#*=} ;;
	rmvm.fuzz_seconds=*) secs=${a#*=} ;;
	esac
done

rm_load name=fz subbuf_size=16384 n_subbufs=4
lg_load channel=fz mode=drop rate=20000 record_size=64
lg_start
rmck_fuzz -n fz --count "$count" --seconds "$secs" || fail "rmck_fuzz"
lg_stop
lg_status
echo "--- after the fuzzing: a fresh consumer, a lossless run on the same channel"
rmck_consume -n fz --reset --mode lossless --count 20000 --min-subbufs 100 ||
	fail "rmck_consume lossless after the fuzzing"
rm_unload
echo "ok: $count random ioctls (or as many as $secs s allowed, see SUMMARY), then a lossless run verified"
