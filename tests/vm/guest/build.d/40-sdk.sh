#!/bin/sh
# Build hook: the SDK's VM tests (tests/vm/rust, package relaymap-vmtests)
# for the guest. Run on the host by the harness with REPO and GUEST_BIN set;
# shared libraries are copied into the initramfs by the harness (ldd).
set -eu
: "${REPO:?}" "${GUEST_BIN:?}"
cd "$REPO"
cargo build --release -p relaymap-vmtests
cp target/release/relaymap-vmtest "$GUEST_BIN/"
