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
