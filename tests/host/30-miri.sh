#!/usr/bin/env bash
# The SDK's pure walker and record parser under Miri (undefined behaviour,
# aliasing, out-of-bounds): these are the parts that read kernel-written
# bytes. Exit 77 (counted as a skip by tests/run-all) when Miri is missing.
set -euo pipefail
if ! cargo +nightly miri --version >/dev/null 2>&1; then
	if ! timeout 300 rustup component add miri rust-src --toolchain nightly >/dev/null 2>&1; then
		echo "skipping: Miri is not installable here (no nightly toolchain with the miri component)"
		exit 77
	fi
fi
# Only the pure modules: the rest maps files and issues ioctls, which Miri
# cannot run.
cargo +nightly miri test -p relaymap --lib -- walker records merge
