#!/bin/sh
# SDK: CPU hotplug. cpu1 is taken offline before the module loads, so the
# channel has no cpu1 buffer; the consumer opens and claims cpu0, cpu1
# comes online, relay creates its buffer, refresh_cpus() reports it,
# reader(1) claims it, and its records arrive.
# timeout: 180
. /relaymap/lib.sh
command -v relaymap-vmtest >/dev/null || fail "relaymap-vmtest not built (build.d/40-sdk.sh)"
on=/sys/devices/system/cpu/cpu1/online
[ -w "$on" ] || skip "cpu1 cannot be taken offline (no $on)"
echo 0 >"$on" 2>/dev/null || skip "offlining cpu1 failed"
rm_load subbuf_size=65536 n_subbufs=8
lg_load count=20000 record_size=64 mode=lossless rate=0
rc=0
relaymap-vmtest hotplug --channel demo --timeout-s 150 || rc=1
echo 1 >"$on" 2>/dev/null
lg_status
rm_unload
[ "$rc" -eq 0 ] || fail "hotplug"
