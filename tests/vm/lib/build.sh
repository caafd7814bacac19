# shellcheck shell=bash
# tests/vm/lib/build.sh - build the module, the guest programs and the
# initramfs for one kernel. Per-kernel build state lives in
# $REPO/target/vm/<kernel>/ (gitignored), so the source tree stays clean and
# the three kernels never share object files.

# sync_tree SRC DST: make DST's sources equal to SRC's. Only changed files are
# copied, with a fresh mtime, so kbuild's incremental build stays correct and
# fast; build products in DST are kept.
sync_tree() {
	local src=$1 dst=$2 f
	mkdir -p "$dst"
	[ -d "$src" ] || return 0
	while IFS= read -r -d '' f; do
		if ! cmp -s "$src/$f" "$dst/$f"; then
			mkdir -p "$dst/$(dirname "$f")"
			cp "$src/$f" "$dst/$f" || return 1
		fi
	done < <(cd "$src" && find . -type f ! -name '*.o' ! -name '*.ko' ! -name '*.mod' ! -name '*.mod.c' \
		! -name '.*.cmd' ! -name 'Module.symvers' ! -name 'modules.order' ! -name '*.a' ! -name '*.tmp' \
		! -path './.tmp*' -print0)
	# Sources deleted in SRC disappear from DST too.
	while IFS= read -r -d '' f; do
		[ -e "$src/$f" ] || rm -f "$dst/$f"
	done < <(cd "$dst" && find . -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' -o -name 'Makefile' \
		-o -name 'Kbuild' \) ! -name '*.mod.c' -print0)
}

# kmod_examples: the example modules under kmod/examples/<name>/ (each a
# folder with a Kbuild), one name per line.
kmod_examples() {
	local d
	for d in "$KMOD_SRC"/examples/*/; do
		[ -e "$d/Kbuild" ] && basename "$d"
	done
	return 0
}

# build_kmod K: build kmod/ (or $RELAYMAP_VM_KMOD, for testing the harness)
# against KDIR, install its development files as a third-party module
# would use them (make install-dev DEVDIR=target/vm/<K>/src/dev: headers in
# dev/include, Module.symvers in dev/<KVER>/), then build every
# kmod/examples/<name>/ against those; list_ko then names the .ko files.
# A copy of kmod/ and include/ sits side by side in target/vm/<K>/src, so
# kmod/Kbuild may use $(src)/../include. Compiler output goes to
# target/vm/<K>/kmod-build.log (and to stderr with VERBOSE_BUILD=1).
build_kmod() {
	local k=$1 kt="$REPO/target/vm/$1" rc=0
	if [ ! -e "$KMOD_SRC/Makefile" ] && [ ! -e "$KMOD_SRC/Kbuild" ]; then
		say "$k: kmod/ has no Makefile or Kbuild yet: no module built"
		return 0
	fi
	sync_tree "$KMOD_SRC" "$kt/src/kmod" || return 1
	sync_tree "$REPO/include" "$kt/src/include" || return 1
	local log="$kt/kmod-build.log"
	say "$k: building kmod/ ($KBUILD)"
	local make_args=(-j"${RELAYMAP_VM_JOBS:-2}" modules) ex exs=()
	mapfile -t exs < <(kmod_examples)
	# The module, its development files, then the examples against those.
	# (install-dev's own `modules` finds everything built: same M= path.)
	local root=$kt/src build=$kt/src dev=$kt/src/dev
	[ "$KBUILD" = host ] || build=/build
	local script="make -C '$KDIR' M='$build/kmod' ${make_args[*]}"
	if [ "${#exs[@]}" -gt 0 ]; then
		script+=" && make -C '$build/kmod' KDIR='$KDIR' DEVDIR='$build/dev' install-dev"
		for ex in "${exs[@]}"; do
			script+=" && make -C '$KDIR' M='$build/kmod/examples/$ex' RELAYMAP='$build/dev' KVER='$KVER' ${make_args[*]}"
		done
	fi
	rm -rf "$dev"
	case $KBUILD in
	host) sh -c "$script" >"$log" 2>&1 || rc=$? ;;
	*) BROOT_BIND="$root" broot_run "$KBUILD" sh -c "$script" >"$log" 2>&1 || rc=$? ;;
	esac
	if [ "$rc" -ne 0 ]; then
		printf 'vm: %s: module build failed (make rc %s), %s:\n' "$k" "$rc" "$log" >&2
		grep -v -e '^make\[[0-9]*\]: \(Entering\|Leaving\)' "$log" | tail -n 60 | sed 's/^/  | /' >&2
		return 1
	fi
	if [ "${VERBOSE_BUILD:-0}" = 1 ]; then
		sed 's/^/  | /' "$log" >&2
	else
		local nw
		nw=$(grep -c 'warning:' "$log" || true)
		[ "$nw" -eq 0 ] || say "$k: module built with $nw warning(s), see $log"
	fi
}

# list_ko K: set KO_FILES to the modules the last build of K produced, from
# the modules.order of kmod/ and of each kmod/examples/<name>/ (stale .ko
# files of renamed modules are ignored; 6.1 lists .ko, newer kernels .o).
list_ko() {
	local k=$1 top="$REPO/target/vm/$1/src/kmod" d m ex
	KO_FILES=()
	[ -e "$KMOD_SRC/Makefile" ] || [ -e "$KMOD_SRC/Kbuild" ] || return 0
	[ -e "$top/modules.order" ] || return 0
	local dirs=("$top")
	while IFS= read -r ex; do dirs+=("$top/examples/$ex"); done < <(kmod_examples)
	for d in "${dirs[@]}"; do
		[ -e "$d/modules.order" ] || { say "$k: ${d#"$REPO"/} was not built (no modules.order)"; return 1; }
		# Entries are absolute (host builds), /build/... (sid) or bare
		# names; the modules of one folder are in that folder.
		while IFS= read -r m; do
			m=${m##*/}
			KO_FILES+=("$d/${m%.*}.ko")
		done <"$d/modules.order"
	done
	for m in "${KO_FILES[@]}"; do
		[ -f "$m" ] || { say "$k: expected module $m is missing"; return 1; }
	done
}

# build_c_programs K: tests/vm/guest/c/*.c -> target/vm/K/cbin/<name>
# (static; rebuilt when the source, a guest/c header or include/ changed).
build_c_programs() {
	local out="$REPO/target/vm/$1/cbin" c name newest=""
	mkdir -p "$out"
	C_BINS=()
	local hdr
	for hdr in "$REPO"/include/*.h "$REPO"/tests/vm/guest/c/*.h; do
		[ -e "$hdr" ] || continue
		if [ -z "$newest" ] || [ "$hdr" -nt "$newest" ]; then newest=$hdr; fi
	done
	for c in "$REPO"/tests/vm/guest/c/*.c; do
		[ -e "$c" ] || continue
		name=$(basename "$c" .c)
		if [ ! -e "$out/$name" ] || [ "$c" -nt "$out/$name" ] || { [ -n "$newest" ] && [ "$newest" -nt "$out/$name" ]; }; then
			if ! gcc -O2 -static -pthread -I"$REPO/include" -o "$out/$name.tmp" "$c" 2>"$out/$name.log"; then
				printf 'vm: building guest program %s failed:\n' "tests/vm/guest/c/$name.c" >&2
				sed 's/^/  | /' "$out/$name.log" | tail -n 40 >&2
				return 1
			fi
			mv "$out/$name.tmp" "$out/$name"
		fi
		C_BINS+=("$out/$name")
	done
}

# write_in_build_root K FILE: the helper that build hooks get as
# $IN_BUILD_ROOT. `$IN_BUILD_ROOT CMD ARGS...` runs CMD where modules for
# kernel K are built: on the host for 6.x, inside the build root of its
# suite for 5.10 (bullseye) and 7.x (sid)
# (chroot in a private mount namespace, /proc mounted, the repository
# bind-mounted at its own path, so every path under it means the same
# inside; the current folder is kept). The environment inside is only
# PATH, HOME and LC_ALL: pass make variables as arguments.
write_in_build_root() {
	local k=$1 f=$2
	case $KBUILD in
	host)
		cat >"$f" <<'EOF2'
#!/bin/sh
# $IN_BUILD_ROOT of a host-built kernel: run the command as it is.
exec "$@"
EOF2
		;;
	*)
		{
			echo '#!/bin/sh'
			echo "# \$IN_BUILD_ROOT of kernel $k: run the command in the $KBUILD build folder,"
			echo "# with the repository at the same path and the current folder kept."
			printf 'root=%q repo=%q\n' "$(broot_dir "$KBUILD")" "$REPO"
			cat <<'EOF2'
cwd=$(pwd)
# shellcheck disable=SC2016 # expanded by the inner shells
exec unshare -m --propagation private -- /bin/sh -c '
	root=$1 repo=$2 cwd=$3; shift 3
	mount -t proc proc "$root/proc" || exit 1
	mkdir -p "$root$repo" && mount --bind "$repo" "$root$repo" || exit 1
	exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
		/bin/sh -c '\''cd "$0" && exec "$@"'\'' "$cwd" "$@"' sh "$root" "$repo" "$cwd" "$@"
EOF2
		} >"$f"
		;;
	esac
	chmod +x "$f"
}

# build_guest_bin K: fill GUEST_BIN=target/vm/<K>/bin with the C programs and
# whatever the build.d hooks put there, and GUEST_KMOD=target/vm/<K>/kmod-extra
# with the modules they build (shipped to /relaymap/kmod/ next to kmod/'s).
# Hooks run from the repo root with REPO, GUEST_BIN, GUEST_KMOD, KVER, KDIR
# (the headers folder, a path inside the build root), RELAYMAP_SYMVERS (the
# Module.symvers of the relaymap.ko this run ships), RELAYMAP_DEV (the same
# build's `make install-dev` folder: include/relaymap/*.h, <KVER>/Module.symvers),
# IN_BUILD_ROOT (runs a command in the build root of this kernel, see
# write_in_build_root) and HOOK_WORK (target/vm/<K>/hook-work/<hook>: a
# folder of its own, kept between runs, visible in the build root).
build_guest_bin() {
	local k=$1 h kt="$REPO/target/vm/$1"
	GUEST_BIN="$kt/bin"
	GUEST_KMOD="$kt/kmod-extra"
	rm -rf "$GUEST_BIN" "$GUEST_KMOD" && mkdir -p "$GUEST_BIN" "$GUEST_KMOD" || return 1
	if [ "${#C_BINS[@]}" -gt 0 ]; then cp "${C_BINS[@]}" "$GUEST_BIN/" || return 1; fi
	write_in_build_root "$k" "$kt/in-build-root" || return 1
	for h in "$REPO"/tests/vm/guest/build.d/*.sh; do
		[ -e "$h" ] || continue
		if [ ! -x "$h" ]; then
			say "warning: ${h#"$REPO"/} is not executable: skipped (chmod +x it)"
			continue
		fi
		local log name
		name=$(basename "$h" .sh)
		log="$kt/hook-$name.log"
		mkdir -p "$kt/hook-work/$name"
		say "$k: build hook ${h#"$REPO"/}"
		if ! (cd "$REPO" && REPO="$REPO" GUEST_BIN="$GUEST_BIN" GUEST_KMOD="$GUEST_KMOD" KVER="$KVER" \
			KDIR="$KDIR" RELAYMAP_SYMVERS="$kt/src/kmod/Module.symvers" RELAYMAP_DEV="$kt/src/dev" \
			IN_BUILD_ROOT="$kt/in-build-root" HOOK_WORK="$kt/hook-work/$name" "$h") >"$log" 2>&1; then
			printf 'vm: %s: build hook %s failed, %s:\n' "$k" "${h#"$REPO"/}" "$log" >&2
			tail -n 60 "$log" | sed 's/^/  | /' >&2
			return 1
		fi
	done
	local ko
	for ko in "$GUEST_KMOD"/*; do
		[ -e "$ko" ] || continue
		case $ko in
		*.ko) ;;
		*) say "$k: ${ko#"$REPO"/}: only .ko files belong in GUEST_KMOD"; return 1 ;;
		esac
	done
}

# copy_shared_libs ROOT FILE...: copy every library (and the ELF interpreter)
# that a dynamic FILE needs into ROOT at the same path.
copy_shared_libs() {
	local root=$1 f line lib
	shift
	for f in "$@"; do
		[ -f "$f" ] || continue
		# Only dynamic ELF files: magic \177ELF and a PT_INTERP (ldd tells).
		[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
		local out
		out=$(ldd "$f" 2>/dev/null) || continue # "not a dynamic executable"
		while IFS= read -r line; do
			case $line in
			*'=> not found'*) say "error: $(basename "$f") needs a library the host lacks: $line"; return 1 ;;
			*'=> /'*) lib=${line#*=> }; lib=${lib%% (*} ;;
			[[:space:]]/*) lib=${line#"${line%%[![:space:]]*}"}; lib=${lib%% (*} ;;
			*) continue ;;
			esac
			if [ ! -e "$root$lib" ]; then
				mkdir -p "$root$(dirname "$lib")"
				cp -L "$lib" "$root$lib"
			fi
		done <<<"$out"
	done
}

# pack_initramfs K OUT: busybox + /init + /relaymap/... as an uncompressed
# newc cpio (the kernel unpacks it faster than it would inflate it).
pack_initramfs() {
	local k=$1 out=$2 st
	st=$(mktemp -d "$out.root.XXXXXX")
	mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc,mnt,relaymap/kmod,relaymap/bin,relaymap/tests}
	cp /bin/busybox "$st/bin/busybox" || return 1
	ln -s busybox "$st/bin/sh"
	# The kernel opens /dev/console before /init runs; devtmpfs comes later.
	mknod -m 600 "$st/dev/console" c 5 1 2>/dev/null || true
	mknod -m 666 "$st/dev/null" c 1 3 2>/dev/null || true
	install -m 755 "$REPO/tests/vm/guest/init" "$st/init" || return 1
	install -m 644 "$REPO/tests/vm/guest/lib.sh" "$st/relaymap/lib.sh" || return 1
	local sc
	for sc in demo bench; do
		[ ! -e "$REPO/tests/vm/guest/$sc.sh" ] || install -m 755 "$REPO/tests/vm/guest/$sc.sh" "$st/relaymap/$sc.sh"
	done
	# Every guest test, or only PACK_TESTS when tests/vm/run resolved a list
	# of --only globs (the guest's /init matches a single glob).
	local t
	for t in "$REPO"/tests/vm/guest/tests/*.sh; do
		[ -e "$t" ] || continue
		if [ -n "${PACK_TESTS[*]:-}" ] && ! printf '%s\n' "${PACK_TESTS[@]}" | grep -qxF "$(basename "$t" .sh)"; then
			continue
		fi
		install -m 755 "$t" "$st/relaymap/tests/"
	done
	if [ "${#KO_FILES[@]}" -gt 0 ]; then cp "${KO_FILES[@]}" "$st/relaymap/kmod/" || return 1; fi
	# The virtio disk modules of this kernel (prepare_kernel), loaded by /init
	# in a `# boot: rmvm.disk=1` boot.
	if [ -e "${BLKMODS:-}/ready" ]; then cp -a "$BLKMODS" "$st/relaymap/blkmods" || return 1; fi
	# Modules the build hooks made (third-party modules, GUEST_KMOD).
	local ko
	for ko in "$GUEST_KMOD"/*.ko; do
		[ -e "$ko" ] || continue
		if [ -e "$st/relaymap/kmod/$(basename "$ko")" ]; then
			say "$k: GUEST_KMOD's $(basename "$ko") has the name of one of kmod/'s modules"
			return 1
		fi
		cp "$ko" "$st/relaymap/kmod/" || return 1
	done
	if [ -n "$(ls -A "$GUEST_BIN")" ]; then
		cp -a "$GUEST_BIN"/. "$st/relaymap/bin/" || return 1
		# DWARF is most of a Rust release binary and makes the initramfs slow
		# to load under TCG; symbols stay, so backtraces keep function names.
		# RELAYMAP_VM_STRIP=0 keeps everything.
		if [ "${RELAYMAP_VM_STRIP:-1}" = 1 ]; then
			local b
			for b in "$st"/relaymap/bin/*; do
				[ -f "$b" ] && [ "$(head -c 4 "$b" | od -An -c | tr -d ' ')" = '177ELF' ] &&
					strip --strip-debug "$b" 2>/dev/null
			done
		fi
		copy_shared_libs "$st" "$GUEST_BIN"/* || return 1
	fi
	echo "relaymap-vm-$k" >"$st/etc/hostname"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$st/etc/passwd"
	printf 'root:x:0:\n' >"$st/etc/group"
	(cd "$st" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out" || return 1
	rm -rf "$st"
}
