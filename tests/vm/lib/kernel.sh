# shellcheck shell=bash
# shellcheck disable=SC2034 # KVER, KDIR, VMLINUZ, KBUILD are read by build.sh and boot.sh
# tests/vm/lib/kernel.sh - resolve a kernel ABI and prepare its headers and
# image in the cache. prepare_kernel K sets:
#   KVER     the ABI, e.g. 6.1.0-56-cloud-amd64 (uname -r in the guest)
#   KDIR     the headers folder to pass to make -C (inside the build root
#            for 5.10 and 7)
#   VMLINUZ  the kernel image to boot
#   KBUILD   "host" (make runs on the host) or the suite of the build root
#            make runs in: "sid" (7), "bullseye" (5.10)
#
# Cache layout ($CACHE):
#   apt/<set>/             private apt indexes (bookworm, bookworm-backports)
#   kernels/<abi>/root/    unpacked headers + kbuild debs (host-built kernels)
#   kernels/<abi>/vmlinuz  the image, extracted from the image .deb
#   kernels/<abi>/ready    written last: everything above is complete
#   kernels/<abi>/blkmods/ virtio disk modules and their load order (for
#                          rmvm.disk=1 boots), fetched on first use
#   sid/root/              debootstrap'd sid folder with sid's gcc, kbuild, pahole
#                          and linux-headers-<abi> installed (kernel 7)
#   bullseye/root/         the same for bullseye (+ bullseye-security): gcc-10,
#                          kbuild 5.10, linux-headers-<abi> (kernel 5.10)

prepare_kernel() {
	case $1 in
	6.1) prepare_debian_kernel bookworm ;;
	6.12) prepare_debian_kernel bookworm-backports ;;
	5.10 | 7) prepare_broot_kernel "$(kernel_broot "$1")" ;;
	*) die "unknown kernel '$1' (expected 5.10, 6.1, 6.12, 7 or all)" ;;
	esac
	BLKMODS="$CACHE/kernels/$KVER/blkmods"
	if [ ! -e "$BLKMODS/ready" ]; then
		with_lock "$CACHE/kernels/$KVER.lock" fetch_blk_modules "$1" "$KVER"
	fi
	prune_kernels "$KVER"
}

# fetch_blk_modules K ABI: the virtio disk modules of a kernel cached before
# they were kept (download its image once more). Not fatal: only the
# rmvm.disk=1 boots need them, and they say so.
fetch_blk_modules() {
	local k=$1 abi=$2 kd="$CACHE/kernels/$2" img="" p tmp
	[ -e "$kd/blkmods/ready" ] && return 0
	say "$abi: fetching the virtio disk modules (image package, once)"
	if [ -n "$(kernel_broot "$k")" ]; then
		broot_fetch_blk_modules "$(kernel_broot "$k")" "$abi"
		return 0
	fi
	local set=bookworm
	[ "$k" = 6.12 ] && set=bookworm-backports
	for p in "linux-image-$abi" "linux-image-$abi-unsigned"; do
		if papt "$set" apt-cache show "$p" >/dev/null 2>&1; then img=$p && break; fi
	done
	[ -n "$img" ] || { say "$abi: no image package"; return 0; }
	tmp=$(mktemp -d "$kd/img.XXXXXX")
	if (cd "$tmp" && run_quiet "$kd/download.log" papt "$set" apt-get download "$img"); then
		extract_blk_modules "$tmp/${img}_"*.deb "$abi" "$kd/blkmods" || say "$abi: no virtio disk modules in $img"
	else
		say "$abi: downloading $img failed"
	fi
	rm -rf "$tmp"
}

# prune_kernels ABI: mark ABI as used now; delete cached kernels (retired
# ABIs) that no run has used for 30 days.
prune_kernels() {
	touch "$CACHE/kernels/$1/ready"
	local d
	while IFS= read -r d; do
		d=$(dirname "$d")
		say "removing $d (unused for 30 days)"
		rm -rf "$d" "$d.lock"
	done < <(find "$CACHE/kernels" -mindepth 2 -maxdepth 2 -name ready -mtime +30 2>/dev/null)
}

# --- 6.1 (bookworm) and 6.12 (bookworm-backports): built on the host ------------

prepare_debian_kernel() {
	local set=$1 abi
	papt_update "$set"
	abi=$(abi_from_meta papt "$set" apt-cache)
	if [ -z "$abi" ]; then
		papt_update "$set" force
		abi=$(abi_from_meta papt "$set" apt-cache)
	fi
	[ -n "$abi" ] || die "cannot resolve the ABI of linux-headers-cloud-amd64 in $set"
	local kd="$CACHE/kernels/$abi"
	if [ ! -e "$kd/ready" ]; then
		with_lock "$CACHE/kernels/$abi.lock" fetch_debian_kernel "$set" "$abi"
	fi
	KVER=$abi
	KDIR="$kd/root/usr/src/linux-headers-$abi"
	VMLINUZ="$kd/vmlinuz"
	KBUILD=host
}

# Download headers, kbuild and image debs, unpack the headers into a folder,
# extract vmlinuz. Never installs anything on the host (6.12's headers would
# pull its image, initramfs-tools and a newer systemd).
fetch_debian_kernel() {
	local set=$1 abi=$2 kd="$CACHE/kernels/$2"
	[ -e "$kd/ready" ] && return 0 # another run did it while we waited
	say "$abi: downloading headers and image ($set)"
	rm -rf "$kd" && mkdir -p "$kd/debs"
	local pkgs img attempt
	for attempt in 1 2; do
		pkgs=("linux-headers-$abi")
		mapfile -t -O 1 pkgs < <(papt "$set" apt-cache depends "linux-headers-$abi" 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-\(headers\|kbuild\)-[^ ]*\)$/\1/p' | sort -u)
		img=""
		for p in "linux-image-$abi" "linux-image-$abi-unsigned"; do
			if papt "$set" apt-cache show "$p" >/dev/null 2>&1; then img=$p && break; fi
		done
		if [ -n "$img" ] && (cd "$kd/debs" && run_quiet "$kd/download.log" papt "$set" apt-get download "${pkgs[@]}" "$img"); then
			break
		fi
		[ "$attempt" = 2 ] && die "$abi: download failed (see $kd/download.log)"
		papt_update "$set" force # the index may name a retired version
	done
	local deb
	mkdir -p "$kd/root"
	for deb in "$kd"/debs/linux-headers-*.deb "$kd"/debs/linux-kbuild-*.deb; do
		dpkg-deb -x "$deb" "$kd/root"
	done
	# The flavour's Makefile includes the -common one by absolute path.
	sed -i "s|^include /usr/src/|include $kd/root/usr/src/|" "$kd/root/usr/src/linux-headers-$abi/Makefile"
	extract_vmlinuz "$kd/debs/${img}_"*.deb "$abi" "$kd/vmlinuz" || die "$abi: no vmlinuz in $img"
	extract_blk_modules "$kd/debs/${img}_"*.deb "$abi" "$kd/blkmods" || say "$abi: no virtio disk modules in $img"
	rm -rf "$kd/debs"
	touch "$kd/ready"
}

# --- build roots: 7 (sid) and 5.10 (bullseye) -------------------------------
#
# A kernel built with another Debian release's compiler (sid's gcc for 7.x,
# bullseye's gcc-10 for 5.10: bookworm has neither) gets its modules built
# inside a cached `debootstrap --variant=minbase <suite>` folder, never by
# mixing that release's packages into the host. One set of helpers serves
# every such build root; a root is named by its suite:
#   $CACHE/<suite>/root/     the folder (root/.relaymap-ready once usable)
#   $CACHE/<suite>/updated   when its package index was last refreshed
#   $CACHE/<suite>/*.log     debootstrap, apt and download logs
#   $CACHE/<suite>.lock      serialises everything that writes the folder

# kernel_broot K: the build root of kernel K (nothing: built on the host).
kernel_broot() {
	case $1 in
	7) echo sid ;;
	5.10) echo bullseye ;;
	esac
}

broot_dir() { echo "$CACHE/$1/root"; }

# broot_sources SUITE: the root's apt sources when debootstrap's single
# line is not enough (nothing: keep it). Bullseye's current kernel is in
# bullseye-security.
broot_sources() {
	case $1 in
	bullseye)
		printf 'deb %s bullseye main\n' "$DEBIAN_MIRROR"
		printf 'deb %s bullseye-updates main\n' "$DEBIAN_MIRROR"
		printf 'deb %s bullseye-security main\n' "$DEBIAN_SECURITY_MIRROR"
		;;
	esac
}

# broot_run SUITE CMD... : run CMD chrooted in the root of SUITE, in a
# private mount namespace with /proc mounted (objtool needs it) and, if
# BROOT_BIND is set, that host folder bind-mounted at /build. Mounts
# vanish with the namespace.
broot_run() {
	local root
	root=$(broot_dir "$1")
	shift
	cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	# Inside the folder, apt retries downloads and accepts a Release file
	# past its Valid-Until (signatures are still checked): mirrors have
	# served a sid Release two weeks stale, and "expired" must not fail a
	# module build.
	[ ! -d "$root/etc/apt/apt.conf.d" ] ||
		printf 'Acquire::Retries "3";\nAcquire::Check-Valid-Until "false";\n' \
			>"$root/etc/apt/apt.conf.d/80relaymap"
	mkdir -p "$root/build"
	# shellcheck disable=SC2016 # expanded by the inner sh
	unshare -m --propagation private -- /bin/sh -c '
		root=$1 bind=$2; shift 2
		mount -t proc proc "$root/proc" || exit 1
		if [ -n "$bind" ]; then mount --bind "$bind" "$root/build" || exit 1; fi
		exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
			DEBIAN_FRONTEND=noninteractive "$@"' sh "$root" "${BROOT_BIND:-}" "$@"
}

broot_bootstrap() {
	local suite=$1 root sources
	root=$(broot_dir "$suite")
	[ -e "$root/.relaymap-ready" ] && return 0
	say "$suite: debootstrap --variant=minbase $suite (first run only, ~1 min)"
	rm -rf "$root"
	mkdir -p "$(dirname "$root")"
	# One retry: a download that fails half-way leaves nothing usable.
	if ! run_quiet "$CACHE/$suite/debootstrap.log" debootstrap --variant=minbase "$suite" "$root" "$DEBIAN_MIRROR"; then
		say "$suite: debootstrap failed, retrying once"
		rm -rf "$root"
		run_quiet "$CACHE/$suite/debootstrap.log" debootstrap --variant=minbase "$suite" "$root" "$DEBIAN_MIRROR" ||
			die "debootstrap $suite failed (see $CACHE/$suite/debootstrap.log)"
	fi
	sources=$(broot_sources "$suite")
	if [ -n "$sources" ]; then
		printf '%s\n' "$sources" >"$root/etc/apt/sources.list"
		run_quiet "$CACHE/$suite/update.log" broot_run "$suite" apt-get -q update ||
			die "$suite: apt-get update failed"
	fi
	run_quiet "$CACHE/$suite/install.log" broot_run "$suite" apt-get -q -y --no-install-recommends install make dwarves ||
		die "$suite: installing make and dwarves failed"
	touch "$root/.relaymap-ready" "$CACHE/$suite/updated"
}

# broot_update SUITE [force]: refresh the root's package index when stale.
broot_update() {
	local suite=$1
	if [ "${RELAYMAP_VM_REFRESH:-0}" = 1 ] || [ "$(file_age_s "$CACHE/$suite/updated")" -gt "$INDEX_MAX_AGE" ] || [ -n "${2:-}" ]; then
		say "$suite: updating package index"
		run_quiet "$CACHE/$suite/update.log" broot_run "$suite" apt-get -q update || die "$suite: apt-get update failed"
		touch "$CACHE/$suite/updated"
	fi
}

# broot_image_pkg SUITE ABI: the package holding the kernel image
# (linux-binary-<abi> since 7.x, linux-image-<abi> before).
broot_image_pkg() {
	local p
	for p in "linux-binary-$2" "linux-image-$2" "linux-image-$2-unsigned"; do
		if broot_run "$1" apt-cache show "$p" >/dev/null 2>&1; then echo "$p" && return 0; fi
	done
	return 1
}

# broot_download SUITE PKG: apt-get download PKG into the root's
# /tmp/relaymap-img/ (emptied first); prints the .deb's path on the host.
broot_download() {
	local suite=$1 pkg=$2 root
	root=$(broot_dir "$suite")
	rm -rf "$root/tmp/relaymap-img" && mkdir -p "$root/tmp/relaymap-img"
	run_quiet "$CACHE/$suite/download.log" broot_run "$suite" sh -c "cd /tmp/relaymap-img && apt-get -q download $pkg" ||
		return 1
	ls "$root/tmp/relaymap-img/${pkg}_"*.deb
}

# broot_modules_pkg SUITE ABI IMG: the package with the kernel's modules
# (since 7.x a package of its own, before that the image package).
broot_modules_pkg() {
	if broot_run "$1" apt-cache show "linux-modules-$2" >/dev/null 2>&1; then
		echo "linux-modules-$2"
	else
		echo "$3"
	fi
}

# broot_fetch_kernel SUITE ABI: install the root's headers for ABI (they
# pull that release's gcc and kbuild), extract its image and its virtio
# disk modules.
broot_fetch_kernel() {
	local suite=$1 abi=$2 kd="$CACHE/kernels/$2" root deb img mods
	root=$(broot_dir "$suite")
	[ -e "$kd/ready" ] && return 0
	say "$abi: installing headers in the $suite folder, downloading image"
	run_quiet "$CACHE/$suite/install.log" broot_run "$suite" apt-get -q -y --no-install-recommends install make dwarves "linux-headers-$abi" ||
		die "$suite: installing linux-headers-$abi failed"
	# Headers of earlier ABIs are not needed any more (~100 MB each).
	local old
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	old=$(broot_run "$suite" dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' 'linux-headers-*' 2>/dev/null |
		sed -n 's/^ii *//p' | grep -v -e "^linux-headers-$abi\$" -e "^linux-headers-${abi%-cloud-amd64}-common\$" || true)
	if [ -n "$old" ]; then
		# shellcheck disable=SC2086 # one package per word
		run_quiet "$CACHE/$suite/purge.log" broot_run "$suite" apt-get -q -y purge $old || say "$suite: could not purge $old"
		broot_run "$suite" apt-get -q -y autoremove >/dev/null 2>&1 || true
	fi
	img=$(broot_image_pkg "$suite" "$abi") || die "$suite: no image package for $abi"
	deb=$(broot_download "$suite" "$img") || die "$suite: downloading $img failed"
	mkdir -p "$kd"
	extract_vmlinuz "$deb" "$abi" "$kd/vmlinuz" || die "$abi: no vmlinuz in $img"
	mods=$(broot_modules_pkg "$suite" "$abi" "$img")
	[ "$mods" = "$img" ] || deb=$(broot_download "$suite" "$mods") || deb=""
	if [ -z "$deb" ] || ! extract_blk_modules "$deb" "$abi" "$kd/blkmods"; then
		say "$abi: no virtio disk modules in $mods"
	fi
	rm -rf "$root/tmp/relaymap-img"
	touch "$kd/ready"
}

# broot_fetch_blk_modules SUITE ABI: the virtio disk modules of a kernel
# cached before they were kept (download its modules once more).
broot_fetch_blk_modules() {
	local suite=$1 abi=$2 kd="$CACHE/kernels/$2" img deb
	img=$(broot_image_pkg "$suite" "$abi") || { say "$abi: no image package"; return 0; }
	img=$(broot_modules_pkg "$suite" "$abi" "$img")
	deb=$(with_lock "$CACHE/$suite.lock" broot_download "$suite" "$img") ||
		{ say "$abi: downloading $img failed"; return 0; }
	extract_blk_modules "$deb" "$abi" "$kd/blkmods" || say "$abi: no virtio disk modules in $img"
	rm -rf "$(broot_dir "$suite")/tmp/relaymap-img"
}

# prepare_broot_kernel SUITE: bootstrap the root once, resolve the ABI from
# the root's headers metapackage, install its headers and cache its image.
prepare_broot_kernel() {
	local suite=$1 abi root
	root=$(broot_dir "$suite")
	[ -e "$root/.relaymap-ready" ] || with_lock "$CACHE/$suite.lock" broot_bootstrap "$suite"
	with_lock "$CACHE/$suite.lock" broot_update "$suite"
	abi=$(abi_from_meta broot_run "$suite" apt-cache)
	if [ -z "$abi" ]; then
		with_lock "$CACHE/$suite.lock" broot_update "$suite" force
		abi=$(abi_from_meta broot_run "$suite" apt-cache)
	fi
	[ -n "$abi" ] || die "$suite: cannot resolve the ABI of linux-headers-cloud-amd64"
	if [ ! -e "$CACHE/kernels/$abi/ready" ] || [ ! -d "$root/usr/src/linux-headers-$abi" ]; then
		rm -f "$CACHE/kernels/$abi/ready"
		if ! with_lock "$CACHE/$suite.lock" broot_fetch_kernel "$suite" "$abi"; then
			say "$suite: retrying with a fresh package index"
			with_lock "$CACHE/$suite.lock" broot_update "$suite" force
			abi=$(abi_from_meta broot_run "$suite" apt-cache)
			[ -n "$abi" ] || die "$suite: cannot resolve the ABI of linux-headers-cloud-amd64"
			with_lock "$CACHE/$suite.lock" broot_fetch_kernel "$suite" "$abi"
		fi
	fi
	KVER=$abi
	KDIR="/usr/src/linux-headers-$abi"
	VMLINUZ="$CACHE/kernels/$abi/vmlinuz"
	KBUILD=$suite
}
