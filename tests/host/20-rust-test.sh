#!/usr/bin/env bash
# Every host test of every workspace crate, with all features (sim, tokio).
set -euo pipefail
cargo test --workspace --all-features
