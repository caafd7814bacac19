#!/bin/sh
# Argument validation of every ioctl on every kind of fd (/dev/relaymap,
# channel fd, consumer fd, debugfs control): bad cpu -> EINVAL (GET_CURSOR,
# FLUSH, GET_STATS, OPEN_CONSUMER), ignored on a consumer fd; PUT_CONSUMED
# count 0 / beyond produced / 64-bit wrap / reserved set -> EINVAL with the
# cursor unchanged, on a channel fd or the control file -> EPERM;
# OPEN_CHANNEL unknown name ENOENT, flags EINVAL; OPEN_CONSUMER flags,
# nr_fds/fds misuse EINVAL, bad fds pointer EFAULT (nothing claimed), held
# EBUSY; LIST counts; size below the first version -> EINVAL; NULL or bad
# pointer -> EFAULT; outputs zeroed; an ioctl of another fd kind and
# unknown numbers -> ENOTTY.
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=ioc subbuf_size=16384 n_subbufs=8
lg_load channel=ioc
rmck_ioctl -n ioc || fail "rmck_ioctl"
rm_unload
echo "ok: every invalid ioctl refused with the documented errno"
