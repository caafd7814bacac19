#!/bin/sh
# mmap of a CPU file through the ABI: mapping exactly alloc_size at offset 0
# works and every page is readable; alloc_size - 4096, alloc_size + 4096,
# one page and non-zero offsets (MAP_SHARED and MAP_PRIVATE) are refused
# with EINVAL; a read-only MAP_PRIVATE mapping works. Nobody can write to
# the buffer: PROT_WRITE + MAP_SHARED is EACCES (O_RDONLY) or EPERM (O_RDWR,
# root), mprotect(PROT_WRITE) and a /proc/self/mem write fail, a writable
# MAP_PRIVATE mapping is a private copy. Records written by the load
# generator show up through the mapping. Two geometries: 16 KiB x 8 and
# 12296 x 3 (subbuf_size * n_subbufs not a page multiple), and the smallest
# one, 4096 x 2.
# timeout: 120
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

failed=""
for geo in mm:16384:8 mm2:12296:3 mm3:4096:2; do
	n=${geo%%:*}
	rest=${geo#*:}
	sz=${rest%%:*}
	nsb=${rest#*:}
	echo "--- channel $n: $sz x $nsb"
	rm_load name="$n" subbuf_size="$sz" n_subbufs="$nsb"
	lg_load channel="$n"
	rmck_mmap -n "$n" || failed="$failed; rmck_mmap on $sz x $nsb"
	rm_unload
done
[ -z "$failed" ] || fail "${failed#; }"
echo "ok: whole-file mmap works, partial/larger/offset mmap is EINVAL, no writable shared mapping, on three geometries"
