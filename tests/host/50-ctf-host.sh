#!/usr/bin/env bash
# relaymap-dump's CTF output read by Debian's babeltrace2 (installed here if
# missing, as root), on the simulated backend: the host test
# `babeltrace2_reads_the_dump` (examples/relaymap-dump/tests/sim.rs) dumps a
# drop-mode channel with drops and printf records and an overwrite channel
# with laps, runs babeltrace2 on both and checks: every record printed, in
# timestamp order across CPUs, printf records as text, discarded events =
# the drops, discarded packets = the laps. The VM test 81-dump-babeltrace
# does the same on a real kernel's dump.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
if ! command -v babeltrace2 >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q babeltrace2 >/dev/null
	else
		echo "skipping: babeltrace2 is not installed and this is not root (apt-get install babeltrace2)"
		exit 77
	fi
fi
babeltrace2 --version | head -n 1
cargo test -q -p relaymap-dump --test sim -- --ignored --exact babeltrace2_reads_the_dump
echo "ok: babeltrace2 reads relaymap-dump's CTF trace (sim backend)"
