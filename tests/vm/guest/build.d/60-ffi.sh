#!/bin/sh
# Build hook: librelaymap (release) and the C/C++ examples for the guest.
# Run on the host by the harness with REPO and GUEST_BIN set.
#   relaymap-consumer      examples/c/consumer.c, linked against
#                          librelaymap.so (soname copy next to it, rpath
#                          $ORIGIN; the harness copies libc etc. via ldd)
#   relaymap-consumer-cpp  examples/c/consumer.cpp, fully static
#                          (librelaymap.a, libstdc++, glibc)
set -eu
: "${REPO:?}" "${GUEST_BIN:?}"
cd "$REPO"
cargo build --release -p relaymap-ffi
lib=target/release
soname=$(readelf -d "$lib/librelaymap.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ -n "$soname" ] || { echo "librelaymap.so has no soname" >&2; exit 1; }
cp "$lib/librelaymap.so" "$GUEST_BIN/$soname"
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader
gcc -std=c11 -O2 -g -Wall -Wextra -Werror -Iinclude examples/c/consumer.c \
	-L"$lib" -lrelaymap -Wl,-rpath,'$ORIGIN' -pthread -o "$GUEST_BIN/relaymap-consumer"
g++ -std=c++17 -O2 -g -Wall -Wextra -Werror -Iinclude -Iexamples/c examples/c/consumer.cpp \
	-static "$lib/librelaymap.a" -pthread -ldl -lm -o "$GUEST_BIN/relaymap-consumer-cpp" 2>"$GUEST_BIN/.link.log" ||
	{ cat "$GUEST_BIN/.link.log" >&2; exit 1; }
rm -f "$GUEST_BIN/.link.log"
readelf -d "$GUEST_BIN/relaymap-consumer" | grep -q "NEEDED.*\[$soname\]"
echo "built relaymap-consumer (needs $soname), relaymap-consumer-cpp (static)"
