#!/bin/sh
# Build hook: the programs of `tests/vm/run bench` (guest/bench.sh), from
# tests/vm/bench/. Run on the host with REPO, GUEST_BIN, GUEST_KMOD, KDIR,
# KVER, IN_BUILD_ROOT, HOOK_WORK and RELAYMAP_SYMVERS set.
#   sum.o            the consumers' per-byte work, compiled once
#                    (-fno-tree-vectorize) and linked into both programs
#   rmbench_rm       the relaymap consumer (the ABI directly), static
#   rmbench_bpf      the BPF ring buffer comparator: rmbench_bpf.bpf.c
#                    (clang -target bpf, bpftool gen skeleton) and libbpf,
#                    static (libbpf.a, libelf, zlib, zstd)
#   rmbench_writer.ko  the relaymap producer (kthreads on a CPU mask)
set -eu
# Only `tests/vm/run bench` needs these programs (and the clang/libbpf
# install): the test runs and the demo skip this hook.
if [ "${RELAYMAP_VM_SCRIPT:-}" != bench ]; then
	echo "skipping: the bench programs are built for tests/vm/run bench only"
	exit 0
fi
: "${REPO:?}" "${GUEST_BIN:?}" "${GUEST_KMOD:?}" "${KDIR:?}" "${KVER:?}" "${IN_BUILD_ROOT:?}" \
	"${HOOK_WORK:?}" "${RELAYMAP_SYMVERS:?}" "${RELAYMAP_DEV:?}"
cd "$REPO"
B=tests/vm/bench
W=$HOOK_WORK

# Debian packages (bookworm): clang 14, libbpf-dev 1.1.2 (libbpf.a),
# bpftool 7.1.0, and the static libraries libbpf needs.
need=""
for p in clang libbpf-dev bpftool libelf-dev zlib1g-dev libzstd-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
	echo "installing$need"
	# A stale index gave a 404 for bpftool once: refresh it first.
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086 # a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

mkdir -p "$W"
CFLAGS="-std=gnu11 -O2 -g -Wall -Wextra -Werror"
# The shared per-byte work: no vectoriser (TCG runs SIMD loops slowly).
# shellcheck disable=SC2086 # CFLAGS is a list of options
gcc $CFLAGS -fno-tree-vectorize -fno-tree-slp-vectorize -c "$B/sum.c" -o "$W/sum.o"

clang -target bpf -O2 -g -Wall -Werror -I/usr/include/"$(gcc -dumpmachine)" \
	-c "$B/rmbench_bpf.bpf.c" -o "$W/rmbench_bpf.bpf.o"
bpftool gen skeleton "$W/rmbench_bpf.bpf.o" name rmbench_bpf_bpf >"$W/rmbench_bpf.skel.h"
# shellcheck disable=SC2086 # CFLAGS is a list of options
gcc $CFLAGS -I"$W" -static "$B/rmbench_bpf.c" "$W/sum.o" -lbpf -lelf -lz -lzstd -pthread \
	-o "$GUEST_BIN/rmbench_bpf"
# shellcheck disable=SC2086
gcc $CFLAGS -Iinclude -static "$B/rmbench_rm.c" "$W/sum.o" -o "$GUEST_BIN/rmbench_rm"

# The producer module, against the install-dev headers and relaymap's symbols.
rm -rf "$W/writer"
cp -a "$B/rmbench_writer" "$W/writer"
"$IN_BUILD_ROOT" make -C "$KDIR" M="$W/writer" KBUILD_EXTRA_SYMBOLS="$RELAYMAP_SYMVERS" \
	ccflags-y=-I"$RELAYMAP_DEV/include" modules >"$W/writer.log" 2>&1 || { cat "$W/writer.log" >&2; exit 1; }
cp "$W/writer/rmbench_writer.ko" "$GUEST_KMOD/"
echo "built rmbench_rm, rmbench_bpf (static), rmbench_writer.ko"
