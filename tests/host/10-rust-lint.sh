#!/usr/bin/env bash
# rustfmt and clippy over the whole workspace, warnings are errors.
set -euo pipefail
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
