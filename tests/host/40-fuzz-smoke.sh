#!/usr/bin/env bash
# The fuzz targets of tests/fuzz (tests/fuzz/README.md), briefly:
#   1. rustfmt and clippy -D warnings of the fuzz crate (its own
#      workspace, so the root's lint stage does not see it);
#   2. its unit tests: the hand-typed ABI numbers against the generated
#      ones, known answers for the oracles, and that each driver reaches
#      both sides of its checks on pseudo-random inputs (stable; and the
#      walker_raw driver, which needs the SDK's cfg(fuzzing) seam);
#   3. tests/fuzz/run.sh --smoke: the saved regression inputs, then 20000
#      executions of every cargo-fuzz target (nightly, AddressSanitizer);
#      a crash fails the stage.
# Installs cargo-fuzz (cargo install cargo-fuzz --locked) when it is
# missing. Exit 77 ("skipping: ...") when there is no nightly toolchain.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

if ! cargo +nightly --version >/dev/null 2>&1; then
	echo "skipping: no nightly toolchain, which cargo-fuzz needs (rustup toolchain install nightly)"
	exit 77
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
	echo "--- installing cargo-fuzz (cargo install cargo-fuzz --locked)"
	cargo install cargo-fuzz --locked
fi

manifest=tests/fuzz/Cargo.toml
export CARGO_TARGET_DIR=$repo/tests/fuzz/target/stable
echo "--- rustfmt --check, clippy -D warnings (tests/fuzz)"
cargo fmt --manifest-path "$manifest" --check
cargo clippy --manifest-path "$manifest" --all-targets --quiet -- -D warnings
echo "--- unit tests of the fuzz drivers (stable)"
cargo test --manifest-path "$manifest" --release --quiet
echo "--- the walker_raw driver (--cfg fuzzing: the SDK's test seam)"
# --cap-lints=warn: until the SDK allows missing_docs on the items its
# seam makes pub (see tests/fuzz/run.sh).
CARGO_TARGET_DIR=$repo/tests/fuzz/target/cfg-fuzzing RUSTFLAGS="--cfg fuzzing --cap-lints=warn" \
	cargo +nightly test --manifest-path "$manifest" --release --quiet --test unit walker_raw
unset CARGO_TARGET_DIR
echo "--- cargo fuzz: 20000 executions per target"
tests/fuzz/run.sh --smoke
