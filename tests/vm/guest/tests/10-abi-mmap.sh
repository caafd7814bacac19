#!/bin/sh
# mmap of a consumer fd (OPEN_CONSUMER through /dev/relaymap): mapping
# exactly alloc_size at offset 0 works and every page is readable;
# alloc_size - 4096, alloc_size + 4096, one page and non-zero offsets
# (MAP_SHARED and MAP_PRIVATE) are refused with EINVAL; a read-only
# MAP_PRIVATE mapping works. Nobody can write to or execute the buffer:
# PROT_WRITE + MAP_SHARED is EACCES, PROT_EXEC is EPERM, mprotect to
# either fails, a /proc/self/mem write fails. Records written by the load
# generator show up through the mapping. The legacy debugfs view: the
# control file answers GET_INFO like the channel fd and refuses
# PUT_CONSUMED; cpuN maps by the same rules and shows the same bytes,
# polls, refuses read() and any writable mapping (even O_RDWR as root); a
# whole lossless run goes through the control file as the channel fd.
# Three geometries: 16 KiB x 8, 12 KiB x 3 (an odd number of pages) and
# the smallest one, 4096 x 2; a sub-buffer that is not whole pages
# (12296) is refused at load.
# timeout: 180
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

failed=""
for geo in mm:16384:8 mm2:12288:3 mm3:4096:2; do
	n=${geo%%:*}
	rest=${geo#*:}
	sz=${rest%%:*}
	nsb=${rest#*:}
	echo "--- channel $n: $sz x $nsb"
	rm_load name="$n" subbuf_size="$sz" n_subbufs="$nsb"
	lg_load channel="$n"
	rmck_mmap -n "$n" --debugfs || failed="$failed; rmck_mmap on $sz x $nsb"
	if [ "$n" = mm ]; then
		echo "--- RESET and a lossless run through the debugfs control file as the channel fd"
		rmck_consume -n mm --debugfs --reset --mode lossless --count 5000 --min-subbufs 20 ||
			failed="$failed; rmck_consume through the debugfs control file"
	fi
	rm_unload
done
if insmod "$RM_KO" name=mm4 subbuf_size=12296 n_subbufs=3 2>/dev/null; then
	rm_unload
	failed="$failed; relaymap loaded with subbuf_size=12296 (not a multiple of the page size)"
fi
[ -z "$failed" ] || fail "${failed#; }"
echo "ok: whole mmap of a consumer fd works, partial/larger/offset mmap is EINVAL, no writable or executable mapping, debugfs legacy view intact, on three geometries"
