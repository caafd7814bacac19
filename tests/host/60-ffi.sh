#!/usr/bin/env bash
# The C API (ffi/, include/relaymap.h, examples/c/):
#   1. cargo test -p relaymap-ffi: the committed header equals what the
#      pinned cbindgen generates; version macros == Cargo.toml == library
#   2. librelaymap.so (soname, only relaymap_* exported) and librelaymap.a
#   3. the header compiles alone as C99 and C++11 with -Wpedantic
#   4. api_test.c, consumer.c, consumer.cpp with AddressSanitizer against the
#      simulated producer (relaymap-sim: lossless and drop modes, per-CPU
#      readers, exclusive claims); consumer.c linked against librelaymap.a
#   5. the same three once under valgrind: no errors, no leaks
#   6. make -C ffi install into a temporary prefix; a program outside the
#      repository built with only pkg-config, shared and fully static
#   7. examples/c/Makefile (pkg-config) against the installed library, and
#      with SIM=1 against one installed with the testing API (relaymap-sim)
#   8. the version macros and relaymap_version() against Cargo.toml
# Prints what it checked; exits non-zero on the first failure.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
work=$(mktemp -d /tmp/relaymap-ffi.XXXXXX)
trap 'rm -rf "$work"' EXIT

n=0
step() { echo "--- $*"; }
ok() {
	n=$((n + 1))
	echo "ok: $*"
}
die() {
	echo "FAIL: $*" >&2
	exit 1
}

version=$(cargo pkgid -p relaymap-ffi | sed 's/.*[@#]//')
ws_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
if [ -z "$version" ] || [ "$version" != "$ws_version" ]; then
	die "relaymap-ffi version '$version' != workspace version '$ws_version'"
fi

step "cargo test -p relaymap-ffi --features sim (header regeneration check, version macros, boundary)"
if ! cargo test -p relaymap-ffi --features sim >"$work/cargo-test.log" 2>&1; then
	grep -E 'panicked|stale|committed:|generated:|regenerate|error' "$work/cargo-test.log" | sed 's/^/  | /' | head -n 30
	die "cargo test -p relaymap-ffi (include/relaymap.h stale? RELAYMAP_BLESS=1 cargo test -p relaymap-ffi --test header)"
fi
grep -E '^test .* ok$' "$work/cargo-test.log" | sed 's/^/  | /'
ok "include/relaymap.h is what cbindgen $(sed -n 's/^cbindgen = { version = "=\([^"]*\)".*/\1/p' ffi/Cargo.toml) generates; version macros = $version"

step "build librelaymap (shared + static, with the testing API: --features sim)"
cargo build -q -p relaymap-ffi --features sim
lib=$work/lib
mkdir -p "$lib"
target=${CARGO_TARGET_DIR:-$repo/target}
cp "$target/debug/librelaymap.so" "$target/debug/librelaymap.a" "$lib/"
soname=$(readelf -d "$lib/librelaymap.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
want_soname="librelaymap.so.$(echo "$version" | awk -F. '{ print ($1 == 0) ? "0." $2 : $1 }')"
[ "$soname" = "$want_soname" ] || die "soname '$soname', want '$want_soname'"
ln -s librelaymap.so "$lib/$soname"
exported=$(nm -D --defined-only "$lib/librelaymap.so" | awk '$2 == "T" { print $3 }')
foreign=$(echo "$exported" | grep -v '^relaymap_' || true)
[ -z "$foreign" ] || die "librelaymap.so exports non-relaymap functions: $foreign"
nexp=$(echo "$exported" | grep -c '^relaymap_')
nm "$lib/librelaymap.a" 2>/dev/null >"$work/static.syms" || true
for f in relaymap_channel_open relaymap_channel_open_path relaymap_reader_open \
	relaymap_channel_open_readers relaymap_reader_next relaymap_reader_acquire \
	relaymap_reader_release relaymap_readers_wait relaymap_sim_create; do
	echo "$exported" | grep -qx "$f" || die "librelaymap.so does not export $f"
	grep -q " T $f\$" "$work/static.syms" || die "librelaymap.a has no $f"
done
# The ABI 1 channel-level consuming calls are gone (next rescanned on top
# of acquire: N(N+1)/2 header checks).
for f in relaymap_channel_next relaymap_channel_acquire relaymap_view_release relaymap_channel_wait; do
	echo "$exported" | grep -qx "$f" && die "librelaymap.so still exports $f"
done
ok "librelaymap.so (soname $soname, $nexp functions, all relaymap_*) and librelaymap.a"

step "the header alone: C99 and C++11, -Wall -Wextra -Wpedantic -Werror"
for std in c99 c11; do
	printf '#include "relaymap.h"\n' | gcc -std=$std -DRELAYMAP_TESTING -Wall -Wextra -Wpedantic -Werror \
		-I include -fsyntax-only -x c - || die "relaymap.h does not compile as $std"
done
printf '#include "relaymap.h"\n' | g++ -std=c++11 -DRELAYMAP_TESTING -Wall -Wextra -Wpedantic -Werror \
	-I include -fsyntax-only -x c++ - || die "relaymap.h does not compile as C++11"
ok "relaymap.h compiles alone as C99, C11 and C++11"

cflags=(-g -Wall -Wextra -Werror -DRELAYMAP_TESTING -I"$repo/include" -I"$repo/examples/c")
# shellcheck disable=SC2054 # commas inside one option
link=(-L"$lib" -lrelaymap -Wl,-rpath,"$lib" -pthread)
# shellcheck disable=SC2054
asan=(-fsanitize=address,undefined -fno-omit-frame-pointer)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

step "build api_test.c, consumer.c, consumer.cpp with -fsanitize=address,undefined"
gcc -std=c11 "${cflags[@]}" "${asan[@]}" ffi/tests/c/api_test.c "${link[@]}" -o "$work/api_test-asan"
gcc -std=c11 "${cflags[@]}" "${asan[@]}" examples/c/consumer.c "${link[@]}" -o "$work/consumer-asan"
g++ -std=c++17 "${cflags[@]}" "${asan[@]}" examples/c/consumer.cpp "${link[@]}" -o "$work/consumer_cpp-asan"
ok "built with ASan"

# run NAME CMD...: run, show the last lines, fail on a non-zero status.
run() {
	local name=$1 out=$work/out.$n
	shift
	if ! "$@" >"$out" 2>&1; then
		sed 's/^/  | /' "$out" | tail -n 40
		die "$name"
	fi
	grep -E '^(total|loss|producers|api_test|ok:)' "$out" | sed 's/^/  | /' || true
	ok "$name"
}

step "ASan: API contract, then the consumers against the simulated producer"
run "api_test (ASan): NULLs, errors, claims and busy, reader/batch state, O(1) next, framing" "$work/api_test-asan"
run "consumer.c (ASan), 2 CPUs x 100000 records, lossless" \
	"$work/consumer-asan" --sim --cpus 2 --count 100000
run "consumer.c (ASan), 4 CPUs x 20000 records, drop mode, 2 x 4 KiB buffers" \
	"$work/consumer-asan" --sim --cpus 4 --count 20000 --drop --subbuf-size 4096 --n-subbufs 2
run "consumer.cpp (ASan), 2 CPUs x 100000 records, lossless" \
	"$work/consumer_cpp-asan" --sim --cpus 2 --count 100000
run "consumer.cpp (ASan), 4 CPUs x 20000 records, drop mode, 2 x 4 KiB buffers" \
	"$work/consumer_cpp-asan" --sim --cpus 4 --count 20000 --drop --subbuf-size 4096 --n-subbufs 2

step "the consumers' errors: no module, not a channel"
for prog in consumer-asan consumer_cpp-asan; do
	rc=0
	RELAYMAP_DEVICE=/nonexistent/relaymap "$work/$prog" --name demo >"$work/err.out" 2>&1 || rc=$?
	if [ "$rc" != 1 ] || ! grep -q 'RELAYMAP_ERR_MODULE_NOT_LOADED' "$work/err.out" ||
		! grep -q 'not loaded' "$work/err.out"; then
		die "$prog --name demo without the module: rc $rc, $(cat "$work/err.out")"
	fi
	echo "  | $prog --name demo: $(grep -m1 RELAYMAP_ERR "$work/err.out")"
	rc=0
	"$work/$prog" --dir /nonexistent/relaymap/x >"$work/err.out" 2>&1 || rc=$?
	if [ "$rc" != 1 ] || ! grep -q 'RELAYMAP_ERR_NOT_A_CHANNEL' "$work/err.out"; then
		die "$prog --dir /nonexistent/relaymap/x: rc $rc, $(cat "$work/err.out")"
	fi
done
ok "consumer, consumer_cpp: RELAYMAP_ERR_MODULE_NOT_LOADED without /dev/relaymap, RELAYMAP_ERR_NOT_A_CHANNEL for a bad directory (exit 1)"

step "consumer.c linked against librelaymap.a (libc dynamic)"
gcc -std=c11 "${cflags[@]}" examples/c/consumer.c "$lib/librelaymap.a" -pthread -ldl -lm -o "$work/consumer-static"
readelf -d "$work/consumer-static" | grep -q 'librelaymap' && die "consumer-static needs librelaymap.so"
run "consumer.c (librelaymap.a), 2 CPUs x 50000 records" "$work/consumer-static" --sim --count 50000

step "valgrind (no errors, no definite/indirect leaks)"
gcc -std=c11 -O1 "${cflags[@]}" ffi/tests/c/api_test.c "${link[@]}" -o "$work/api_test"
gcc -std=c11 -O1 "${cflags[@]}" examples/c/consumer.c "${link[@]}" -o "$work/consumer"
g++ -std=c++17 -O1 "${cflags[@]}" examples/c/consumer.cpp "${link[@]}" -o "$work/consumer_cpp"
# shellcheck disable=SC2054
vg=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect)
for t in "api_test" "consumer --sim --count 5000" "consumer_cpp --sim --count 5000" \
	"consumer --sim --count 3000 --drop --subbuf-size 4096 --n-subbufs 2" \
	"consumer_cpp --sim --count 3000 --drop --subbuf-size 4096 --n-subbufs 2"; do
	# shellcheck disable=SC2086 # $t is a command line
	set -- $t
	log=$work/vg.$1.$n
	if ! "${vg[@]}" --log-file="$log" "$work/$1" "${@:2}" >"$work/vgout" 2>&1; then
		sed 's/^/  | /' "$log" | tail -n 60
		sed 's/^/  | /' "$work/vgout" | tail -n 20
		die "valgrind: $t"
	fi
	summary=$(grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|All heap blocks' "$log" |
		sed 's/^==[0-9]*== *//' | tr '\n' ';')
	ok "valgrind $t: $summary"
done

step "make -C ffi install into a temporary prefix"
prefix=$work/prefix
make -s -C ffi install PREFIX="$prefix" >"$work/install.log" 2>&1 || {
	tail -n 40 "$work/install.log"
	die "make -C ffi install"
}
for f in include/relaymap.h include/relaymap_abi.h lib/librelaymap.a "lib/librelaymap.so.$version" \
	"lib/$soname" lib/librelaymap.so lib/pkgconfig/relaymap.pc; do
	[ -e "$prefix/$f" ] || die "install: $f missing"
done
[ "$(readlink "$prefix/lib/$soname")" = "librelaymap.so.$version" ] || die "install: $soname link"
[ "$(readlink "$prefix/lib/librelaymap.so")" = "$soname" ] || die "install: librelaymap.so link"
ok "installed: relaymap.h relaymap_abi.h librelaymap.so.$version $soname librelaymap.so librelaymap.a relaymap.pc"

step "a program outside the repository, built with only pkg-config"
app=$(mktemp -d /tmp/relaymap-app.XXXXXX)
trap 'rm -rf "$work" "$app"' EXIT
cat >"$app/app.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <relaymap.h>

int main(void)
{
	relaymap_channel *ch = NULL;
	relaymap_result rc = relaymap_channel_open_path("/nonexistent/relaymap", &ch);
	int ok = rc == RELAYMAP_ERR_NOT_A_CHANNEL && ch == NULL &&
		 strstr(relaymap_last_error(), "not a relaymap channel") != NULL;

	setenv("RELAYMAP_DEVICE", "/nonexistent/relaymap-device", 1);
	ok &= relaymap_channel_open("demo", &ch) == RELAYMAP_ERR_MODULE_NOT_LOADED;
	ok &= relaymap_channel_open(NULL, &ch) == RELAYMAP_ERR_NULL_ARGUMENT;
	printf("header %d.%d.%d %s library %s\n", RELAYMAP_VERSION_MAJOR,
	       RELAYMAP_VERSION_MINOR, RELAYMAP_VERSION_PATCH,
	       RELAYMAP_VERSION_STRING, relaymap_version());
	return ok ? 0 : 1;
}
EOF
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[ "$(pkg-config --modversion relaymap)" = "$version" ] || die "pkg-config --modversion relaymap"
echo "  | pkg-config --cflags --libs relaymap: $(pkg-config --cflags --libs relaymap)"
echo "  | pkg-config --static --libs relaymap: $(pkg-config --static --libs relaymap)"
(
	cd "$app"
	# shellcheck disable=SC2046 # pkg-config's words
	cc -Wall -Werror app.c $(pkg-config --cflags --libs relaymap) -o app-shared
	# shellcheck disable=SC2046
	cc -static -Wall -Werror app.c $(pkg-config --static --cflags --libs relaymap) -o app-static 2>link.log
) || die "building the pkg-config program"
readelf -d "$app/app-shared" | grep -q "NEEDED.*\[$soname\]" || die "app-shared does not need $soname"
out_shared=$(LD_LIBRARY_PATH=$prefix/lib "$app/app-shared") || die "app-shared failed: $out_shared"
ok "shared: cc app.c \$(pkg-config --cflags --libs relaymap): needs $soname, runs: $out_shared"
readelf -l "$app/app-static" | grep -q INTERP && die "app-static is not static"
out_static=$(env -u LD_LIBRARY_PATH "$app/app-static") || die "app-static failed: $out_static"
ok "static: cc -static app.c \$(pkg-config --static --cflags --libs relaymap): no interpreter, runs: $out_static"

step "examples/c/Makefile against the installed library (copy outside the repository)"
cp -r examples/c "$app/examples"
make -s -C "$app/examples" >"$app/make.log" 2>&1 || { tail -n 20 "$app/make.log"; die "make -C examples/c"; }
make -s -C "$app/examples" STATIC=1 -B >"$app/make-static.log" 2>&1 || {
	tail -n 20 "$app/make-static.log"
	die "make -C examples/c STATIC=1"
}
rc=0
LD_LIBRARY_PATH=$prefix/lib "$app/examples/consumer" --dir /nonexistent/relaymap/x >"$app/run.log" 2>&1 || rc=$?
if [ "$rc" != 1 ] || ! grep -q 'RELAYMAP_ERR_NOT_A_CHANNEL' "$app/run.log"; then
	die "consumer --dir /nonexistent/relaymap/x: rc $rc, $(cat "$app/run.log")"
fi
ok "make -C examples/c (shared and STATIC=1) with pkg-config; consumer reports: $(head -n 1 "$app/run.log")"

step "examples/c/Makefile SIM=1 against a library installed with the testing API (FEATURES=sim)"
prefix_sim=$work/prefix-sim
# PROFILE=dev: the --features sim build made above, nothing is rebuilt.
make -s -C ffi install PREFIX="$prefix_sim" FEATURES=sim PROFILE=dev >"$work/install-sim.log" 2>&1 || {
	tail -n 40 "$work/install-sim.log"
	die "make -C ffi install FEATURES=sim"
}
cp -r examples/c "$app/examples-sim"
rm -f "$app/examples-sim/consumer" "$app/examples-sim/consumer_cpp"
PKG_CONFIG_PATH=$prefix_sim/lib/pkgconfig make -s -C "$app/examples-sim" SIM=1 >"$app/make-sim.log" 2>&1 || {
	tail -n 20 "$app/make-sim.log"
	die "make -C examples/c SIM=1"
}
for prog in consumer consumer_cpp; do
	LD_LIBRARY_PATH=$prefix_sim/lib "$app/examples-sim/$prog" --sim --count 5000 >"$app/sim.$prog.log" 2>&1 ||
		{ tail -n 20 "$app/sim.$prog.log"; die "$prog --sim (SIM=1 build)"; }
	grep -q '^ok: every record arrived once' "$app/sim.$prog.log" || die "$prog --sim: no ok line"
done
ok "make -C examples/c SIM=1 (pkg-config, testing install): consumer and consumer_cpp --sim pass"

step "version macros and relaymap_version() against Cargo.toml ($version)"
want="header $version $version library $version"
for out in "$out_shared" "$out_static"; do
	[ "$out" = "$want" ] || die "version: got '$out', want '$want'"
done
grep -q "^#define RELAYMAP_VERSION_STRING \"$version\"\$" include/relaymap.h || die "RELAYMAP_VERSION_STRING"
ok "RELAYMAP_VERSION_MAJOR.MINOR.PATCH = RELAYMAP_VERSION_STRING = relaymap_version() = $version (Cargo.toml)"

echo "60-ffi: $n checks passed"
