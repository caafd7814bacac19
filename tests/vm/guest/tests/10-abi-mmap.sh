#!/bin/sh
# mmap of a CPU file through the ABI: mapping exactly alloc_size at offset 0
# works and every page is readable; alloc_size - 4096, alloc_size + 4096,
# one page and non-zero offsets are refused with EINVAL; records written by
# the load generator show up through the mapping. Two geometries: 16 KiB x 8
# and 12296 x 3 (subbuf_size * n_subbufs not a page multiple).
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=mm subbuf_size=16384 n_subbufs=8
lg_load channel=mm
rmck_mmap -n mm || fail "rmck_mmap on 16384 x 8"
rm_unload

rm_load name=mm2 subbuf_size=12296 n_subbufs=3
lg_load channel=mm2
rmck_mmap -n mm2 || fail "rmck_mmap on 12296 x 3"
rm_unload
echo "ok: whole-file mmap works, partial/larger/offset mmap is EINVAL, on two geometries"
