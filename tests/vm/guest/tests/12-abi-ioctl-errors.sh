#!/bin/sh
# Argument validation of the control ioctls: bad cpu -> EINVAL (GET_CURSOR,
# PUT_CONSUMED, FLUSH, GET_STATS), PUT_CONSUMED count 0 / beyond produced /
# 64-bit wrap -> EINVAL with the cursor unchanged, size below v1 -> EINVAL,
# larger size accepted without writing past the struct, outputs zeroed,
# bad pointer -> EFAULT, unknown ioctl numbers -> ENOTTY.
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=ioc subbuf_size=16384 n_subbufs=8
lg_load channel=ioc
rmck_ioctl -n ioc || fail "rmck_ioctl"
rm_unload
echo "ok: every invalid ioctl refused with the documented errno"
