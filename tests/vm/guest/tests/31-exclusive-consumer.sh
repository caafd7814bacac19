#!/bin/sh
# Exclusive consumers, per CPU. One process holds one CPU: GET_CURSOR names
# it (pid, comm), OPEN_CONSUMER(ALL) elsewhere is EBUSY and claims nothing.
# A lossless run of 20000 records per CPU: while the holder consumes, a
# second process keeps trying OPEN_CONSUMER of each CPU and of ALL (EBUSY,
# holder pid and comm reported), a stray PUT_CONSUMED on a channel fd and
# on the debugfs control file (EPERM), and FLUSH (allowed); the holder
# checks the kernel's consumed count after every hand-back. The holder
# closes (then unmaps): the claim is released, consumed is exactly what it
# handed back, and the next consumer starts there, at the very next record
# (the sub-buffer read but not handed back comes again). That one is
# SIGKILLed: released the same way. A last consumer drains the rest:
# received over the three == loadgen written, seq contiguous, 0 dropped.
# timeout: 300
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=excl subbuf_size=16384 n_subbufs=8
lg_load channel=excl
rmck_exclusive -n excl --count 20000 --handover 10 || fail "rmck_exclusive"
rm_unload
echo "ok: second consumer refused (EBUSY, holder named), stray PUT_CONSUMED refused (EPERM), nothing lost across close and SIGKILL hand-overs"
