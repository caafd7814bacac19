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
# Count: 200000 ioctls, stopped early after 150 s, and at least 100000
# (else the test fails: the ABI asks >= 10^5 per kernel). The kernel
# command line overrides them: rmvm.fuzz_ioctls=N rmvm.fuzz_seconds=S
# rmvm.fuzz_min=M (the long runs of tests/fuzz/README.md).
# timeout: 600
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

count=200000
secs=150
min=100000
# shellcheck disable=SC2013 # the command line is words, not lines
for a in $(cat /proc/cmdline); do
	case $a in
	rmvm.fuzz_ioctls=*) count=${a#*=} ;;
	rmvm.fuzz_seconds=*) secs=${a#*=} ;;
	rmvm.fuzz_min=*) min=${a#*=} ;;
	esac
done

rm_load name=fz subbuf_size=16384 n_subbufs=4
lg_load channel=fz mode=drop rate=20000 record_size=64
lg_start
rmck_fuzz -n fz --count "$count" --seconds "$secs" --min "$min" || fail "rmck_fuzz"
lg_stop
lg_status
echo "--- after the fuzzing: a fresh consumer, a lossless run on the same channel"
rmck_consume -n fz --reset --mode lossless --count 20000 --min-subbufs 100 ||
	fail "rmck_consume lossless after the fuzzing"
rm_unload
echo "ok: random ioctls (SUMMARY above: at least $min, at most $count), then a lossless run verified"
