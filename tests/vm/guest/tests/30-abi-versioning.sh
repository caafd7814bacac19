#!/bin/sh
# ABI versioning of the ioctl structs (copy_struct_from_user() rule): for
# every ioctl with a struct (LIST, OPEN_CHANNEL, GET_INFO, GET_CURSOR on a
# channel fd and on a consumer fd, GET_CURSORS, FLUSH, GET_STATS,
# OPEN_CONSUMER of one CPU and of ALL, PUT_CONSUMED) the command number
# encodes the first version's size; a first-version struct works; a larger
# struct with a zeroed tail works through the same command number (a
# caller compiled with a bigger struct), the same answer, nothing written
# past the kernel's struct, size set to what the kernel filled; a non-zero
# byte anywhere in the tail (also in the next page) is E2BIG with no
# effect; a tail in an unmapped page is EFAULT; a size below the first
# version is EINVAL with no effect. GET_CURSORS honours a bigger
# cursor_size stride. GET_VERSION is 2.
# timeout: 200
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=abiv subbuf_size=4096 n_subbufs=64
lg_load channel=abiv
rmck_abiver -n abiv || fail "rmck_abiver"
rm_unload
echo "ok: first-version, larger zero-tailed, non-zero-tailed (E2BIG) and short (EINVAL) structs behave as documented on every ioctl"
