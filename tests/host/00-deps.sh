#!/usr/bin/env bash
# Installs the host packages the host stages need (idempotent, quiet).
set -euo pipefail
need=()
# libclang-dev: bindgen regenerates the SDK's ABI mirror (sdk/src/abi_sys.rs) in a
# test and compares it with the committed file.
for pkg in gcc g++ make pkg-config valgrind linux-libc-dev libclang-dev; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o Acquire::Retries=3 update -qq
	apt-get -o Acquire::Retries=3 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
echo "host deps ok"
