#!/bin/sh
# Build hook: relaymap-dump and the relaymap CLI (release), the quick-start
# programs for the guest, plus rmdump_dropuid (runs a program as another
# uid: the guest's busybox setpriv cannot) and rmdump_killat (SIGKILLs the
# dumper at a byte count on disk, for 78-dump-sigkill). Run on the host with REPO and
# GUEST_BIN set.
set -eu
: "${REPO:?}" "${GUEST_BIN:?}"
cd "$REPO"
cargo build --release -p relaymap-dump -p relaymap-quickstart
cp target/release/relaymap-dump target/release/relaymap target/release/tail-records \
	target/release/flight-recorder "$GUEST_BIN/"
gcc -O2 -static -Wall -Werror -o "$GUEST_BIN/rmdump_dropuid" examples/relaymap-dump/vm/rmdump_dropuid.c
gcc -O2 -static -Wall -Werror -o "$GUEST_BIN/rmdump_killat" examples/relaymap-dump/vm/rmdump_killat.c
# Until tests/vm/lib/build.sh packs the virtio disk modules for rmvm.disk=1
# boots (requested, /tmp/requests/lead.md): a copy for the 8x dump tests,
# which mount the disk themselves when /init did not.
blk="${RELAYMAP_VM_CACHE:-/var/cache/relaymap-vm}/kernels/$KVER/blkmods"
if [ -e "$blk/ready" ]; then
	mkdir -p "$GUEST_BIN/rmdump-blkmods"
	cp "$blk"/*.ko "$blk/order" "$GUEST_BIN/rmdump-blkmods/"
fi
