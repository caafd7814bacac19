#!/bin/sh
# Build hook: kmod/README.md's out-of-tree example, built the way the
# README says, as a third-party module would be (test 38 loads it).
#
# In HOOK_WORK: a fresh copy of kmod/ and include/ (a user's checkout),
# `make -C kmod` and `make -C kmod install-dev DESTDIR=...` there (the
# README's unprivileged variant), then hello_relaymap.c and its Kbuild cut
# out of the README's marked code blocks, built with the README's command
# (KDIR/KVER for this kernel, RELAYMAP for the DESTDIR install). Every make
# runs through $IN_BUILD_ROOT (the sid folder for 7.x). The installed
# Module.symvers must carry the same CRCs as $RELAYMAP_SYMVERS, the one of
# the relaymap.ko the guest loads. The module goes to $GUEST_KMOD.
set -eu
: "${REPO:?}" "${GUEST_KMOD:?}" "${KDIR:?}" "${KVER:?}" "${IN_BUILD_ROOT:?}" "${HOOK_WORK:?}" "${RELAYMAP_SYMVERS:?}"
cd "$REPO"
W=$HOOK_WORK
version=$(sed -n 's/^#define RELAYMAP_VERSION[[:space:]]*"\(.*\)"/\1/p' kmod/include/relaymap/relaymap.h)
[ -n "$version" ] || { echo "no RELAYMAP_VERSION in kmod/include/relaymap/relaymap.h" >&2; exit 1; }

# The "checkout": rebuilt only when kmod/ or include/ changed.
sum=$(find kmod include -type f \( -name '*.[ch]' -o -name Kbuild -o -name Makefile -o -name '*.sh' -o -name '*.conf' \) \
	! -name '*.mod.c' -print0 | sort -z | xargs -0 cat | md5sum | cut -d' ' -f1)
if [ "$(cat "$W/checkout.sum" 2>/dev/null)" != "$sum" ]; then
	rm -rf "$W/checkout" "$W/root"
	mkdir -p "$W/checkout"
	cp -a kmod include "$W/checkout/"
	# No build products of the repository's own tree in the copy.
	find "$W/checkout" \( -name '*.o' -o -name '*.ko' -o -name '*.mod' -o -name '*.mod.c' -o -name '.*.cmd' \
		-o -name Module.symvers -o -name modules.order \) -delete
	echo "$sum" >"$W/checkout.sum"
fi

# 1. relaymap and its development files (README: "Out-of-tree modules").
cd "$W/checkout"
"$IN_BUILD_ROOT" make -C kmod KDIR="$KDIR"
"$IN_BUILD_ROOT" make -C kmod KDIR="$KDIR" install-dev DESTDIR="$W/root"
dev="$W/root/usr/src/relaymap-$version"
for f in relaymap.h relaymap_abi.h; do
	[ -f "$dev/include/relaymap/$f" ] || { echo "install-dev did not install $dev/include/relaymap/$f" >&2; exit 1; }
done
[ -f "$dev/$KVER/Module.symvers" ] || { echo "install-dev did not install $dev/$KVER/Module.symvers" >&2; exit 1; }
crcs() { awk '{ print $1, $2 }' "$1" | sort; }
if [ "$(crcs "$dev/$KVER/Module.symvers")" != "$(crcs "$RELAYMAP_SYMVERS")" ]; then
	echo "the installed Module.symvers and the harness's ($RELAYMAP_SYMVERS) differ:" >&2
	diff "$dev/$KVER/Module.symvers" "$RELAYMAP_SYMVERS" >&2 || true
	exit 1
fi

# 2. The module's files, exactly as the README shows them.
mkdir -p "$W/hello_relaymap"
rm -f "$W/hello_relaymap/hello_relaymap.c" "$W/hello_relaymap/Kbuild"
awk -v out="$W" '
	/^<!-- file: hello_relaymap\/[A-Za-z0-9_.]+ -->$/ { f = out "/" $3; want = 1; next }
	want && /^```/ { if (inblock) { close(f); inblock = 0; want = 0 } else { inblock = 1; printf "" > f } ; next }
	inblock { print > f }
' "$REPO/kmod/README.md"
for f in hello_relaymap.c Kbuild; do
	[ -s "$W/hello_relaymap/$f" ] || { echo "kmod/README.md has no marked block for hello_relaymap/$f" >&2; exit 1; }
done

# 3. The README's build command, for this kernel and the DESTDIR install.
cd "$W"
"$IN_BUILD_ROOT" make -C "$KDIR" M="$W/hello_relaymap" KVER="$KVER" RELAYMAP="$dev" modules
cp "$W/hello_relaymap/hello_relaymap.ko" "$GUEST_KMOD/"
echo "built hello_relaymap.ko from kmod/README.md against $dev"
