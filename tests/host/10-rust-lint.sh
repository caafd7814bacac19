#!/usr/bin/env bash
# rustfmt and clippy over the whole workspace, warnings are errors.
set -euo pipefail
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
# The SDK's docs (missing docs are already an error via #![deny(missing_docs)]).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p relaymap --all-features
