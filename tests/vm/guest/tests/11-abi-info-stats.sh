#!/bin/sh
# GET_VERSION is 2 and LIST names the channel (/dev/relaymap); GET_INFO
# reports what the channel was made with (abi_version 2, header_size 112,
# flags, geometry from the module parameters, page_size, alloc_size =
# subbuf_size * n_subbufs, max_data_size = max_record_size - 16, a uuid,
# name, nr_cpu_ids, cpu_mask = online CPUs = the debugfs cpu<N> files);
# GET_CURSORS matches GET_CURSOR (holder: this process); GET_STATS per
# CPU matches GET_CURSOR and the load generator (bytes_written = data
# bytes, nothing rejected), and the all-CPU total is the sum of the CPUs.
# timeout: 180
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

rm_load name=info subbuf_size=16384 n_subbufs=8
lg_load channel=info
# 1000 records of 64 bytes fit in 16 KiB x 8 without a reader (lossless).
rmck_info -n info --subbuf-size 16384 --n-subbufs 8 --stats 1000 ||
	fail "rmck_info on info (16384 x 8, no-overwrite)"
rm_unload

# Odd geometry (3 pages x 3 = 36864 bytes) in overwrite mode.
rm_load name=odd subbuf_size=12288 n_subbufs=3 overwrite=1
lg_load channel=odd
rmck_info -n odd --subbuf-size 12288 --n-subbufs 3 --overwrite 1 --stats 5000 ||
	fail "rmck_info on odd (12288 x 3, overwrite)"
rm_unload

# The longest name (63 characters) is reported whole and NUL-terminated;
# 64 characters do not fit RELAYMAP_NAME_MAX and the module refuses to load.
long=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_
assert_eq "${#long}" 63 "length of the test name"
rm_load name="$long" subbuf_size=8192 n_subbufs=4
rmck_info -n "$long" --subbuf-size 8192 --n-subbufs 4 || fail "rmck_info with a 63-character name"
rm_unload
if insmod "$RM_KO" name="${long}X" 2>/dev/null; then
	rm_unload
	fail "relaymap loaded with a 64-character channel name"
fi
echo "ok: 63-character name reported, 64-character name refused"

# The defaults of the module parameters.
rm_load
rmck_info -n demo --subbuf-size 262144 --n-subbufs 8 || fail "rmck_info on the default channel"
rm_unload
echo "ok: GET_INFO and GET_STATS consistent on three channels"
