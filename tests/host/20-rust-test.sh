#!/usr/bin/env bash
# Every host test of every workspace crate, with all features (tokio, sim).
# Tests that need root are #[ignore = "needs root ..."] (cargo lists them as
# ignored, with the reason); as root they run too.
set -euo pipefail
cargo test --workspace --all-features
if [ "$(id -u)" = 0 ]; then
	cargo test -p relaymap-dump --all-features --test sim -- --ignored
else
	echo "skipping: the root-only relaymap-dump host tests (not root): listed as ignored above"
fi
