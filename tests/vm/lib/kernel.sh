# shellcheck shell=bash
# shellcheck disable=SC2034 # KVER, KDIR, VMLINUZ, KBUILD are read by build.sh and boot.sh
# tests/vm/lib/kernel.sh - resolve a kernel ABI and prepare its headers and
# image in the cache. prepare_kernel K sets:
#   KVER     the ABI, e.g. 6.1.0-56-cloud-amd64 (uname -r in the guest)
#   KDIR     the headers folder to pass to make -C (inside SID_ROOT for 7)
#   VMLINUZ  the kernel image to boot
#   KBUILD   "host" (make runs on the host) or "sid" (make runs in SID_ROOT)
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

SID_ROOT="$CACHE/sid/root"

prepare_kernel() {
	case $1 in
	6.1) prepare_debian_kernel bookworm ;;
	6.12) prepare_debian_kernel bookworm-backports ;;
	7) prepare_sid_kernel ;;
	*) die "unknown kernel '$1' (expected 6.1, 6.12, 7 or all)" ;;
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
	if [ "$k" = 7 ]; then
		for p in "linux-binary-$abi" "linux-image-$abi" "linux-image-$abi-unsigned"; do
			if sid_run apt-cache show "$p" >/dev/null 2>&1; then img=$p && break; fi
		done
		[ -n "$img" ] || { say "$abi: no image package"; return 0; }
		# Since 7.x the modules are a package of their own.
		if sid_run apt-cache show "linux-modules-$abi" >/dev/null 2>&1; then img="linux-modules-$abi"; fi
		rm -rf "$SID_ROOT/tmp/relaymap-img" && mkdir -p "$SID_ROOT/tmp/relaymap-img"
		run_quiet "$CACHE/sid/download.log" with_lock "$CACHE/sid.lock" sid_run sh -c "cd /tmp/relaymap-img && apt-get -q download $img" ||
			{ say "$abi: downloading $img failed"; return 0; }
		extract_blk_modules "$SID_ROOT/tmp/relaymap-img/${img}_"*.deb "$abi" "$kd/blkmods" || say "$abi: no virtio disk modules in $img"
		rm -rf "$SID_ROOT/tmp/relaymap-img"
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

# --- 7 (sid): built inside a debootstrap'd sid folder -----------------------

# sid_run CMD... : run CMD chrooted in SID_ROOT, in a private mount namespace
# with /proc mounted (objtool needs it) and, if SID_BIND is set, that host
# folder bind-mounted at /build. Mounts vanish with the namespace.
sid_run() {
	cp -L /etc/resolv.conf "$SID_ROOT/etc/resolv.conf" 2>/dev/null || true
	# Inside the folder, apt retries downloads and accepts a Release file
	# past its Valid-Until (signatures are still checked): mirrors have
	# served a sid Release two weeks stale, and "expired" must not fail a
	# module build.
	[ ! -d "$SID_ROOT/etc/apt/apt.conf.d" ] ||
		printf 'Acquire::Retries "3";\nAcquire::Check-Valid-Until "false";\n' \
			>"$SID_ROOT/etc/apt/apt.conf.d/80relaymap"
	mkdir -p "$SID_ROOT/build"
	# shellcheck disable=SC2016 # expanded by the inner sh
	unshare -m --propagation private -- /bin/sh -c '
		root=$1 bind=$2; shift 2
		mount -t proc proc "$root/proc" || exit 1
		if [ -n "$bind" ]; then mount --bind "$bind" "$root/build" || exit 1; fi
		exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
			DEBIAN_FRONTEND=noninteractive "$@"' sh "$SID_ROOT" "${SID_BIND:-}" "$@"
}

sid_bootstrap() {
	[ -e "$SID_ROOT/.relaymap-ready" ] && return 0
	say "sid: debootstrap --variant=minbase sid (first run only, ~1 min)"
	rm -rf "$SID_ROOT"
	mkdir -p "$(dirname "$SID_ROOT")"
	# One retry: a download that fails half-way leaves nothing usable.
	if ! run_quiet "$CACHE/sid/debootstrap.log" debootstrap --variant=minbase sid "$SID_ROOT" "$DEBIAN_MIRROR"; then
		say "sid: debootstrap failed, retrying once"
		rm -rf "$SID_ROOT"
		run_quiet "$CACHE/sid/debootstrap.log" debootstrap --variant=minbase sid "$SID_ROOT" "$DEBIAN_MIRROR" ||
			die "debootstrap sid failed (see $CACHE/sid/debootstrap.log)"
	fi
	run_quiet "$CACHE/sid/install.log" sid_run apt-get -q -y --no-install-recommends install make dwarves ||
		die "sid: installing make and dwarves failed"
	touch "$SID_ROOT/.relaymap-ready" "$CACHE/sid/updated"
}

sid_update() {
	if [ "${RELAYMAP_VM_REFRESH:-0}" = 1 ] || [ "$(file_age_s "$CACHE/sid/updated")" -gt "$INDEX_MAX_AGE" ] || [ -n "${1:-}" ]; then
		say "sid: updating package index"
		run_quiet "$CACHE/sid/update.log" sid_run apt-get -q update || die "sid: apt-get update failed"
		touch "$CACHE/sid/updated"
	fi
}

# Install sid's headers for ABI (pulls sid's gcc and kbuild) and extract its
# image (linux-binary-<abi> since 7.x, linux-image-<abi> before).
sid_fetch_kernel() {
	local abi=$1 kd="$CACHE/kernels/$1"
	[ -e "$kd/ready" ] && return 0
	say "$abi: installing headers in the sid folder, downloading image"
	run_quiet "$CACHE/sid/install.log" sid_run apt-get -q -y --no-install-recommends install make dwarves "linux-headers-$abi" ||
		die "sid: installing linux-headers-$abi failed"
	# Headers of earlier ABIs are not needed any more (~100 MB each).
	local old
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	old=$(sid_run dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' 'linux-headers-*' 2>/dev/null |
		sed -n 's/^ii *//p' | grep -v -e "^linux-headers-$abi\$" -e "^linux-headers-${abi%-cloud-amd64}-common\$" || true)
	if [ -n "$old" ]; then
		# shellcheck disable=SC2086 # one package per word
		run_quiet "$CACHE/sid/purge.log" sid_run apt-get -q -y purge $old || say "sid: could not purge $old"
		sid_run apt-get -q -y autoremove >/dev/null 2>&1 || true
	fi
	local p img=""
	for p in "linux-binary-$abi" "linux-image-$abi" "linux-image-$abi-unsigned"; do
		if sid_run apt-cache show "$p" >/dev/null 2>&1; then img=$p && break; fi
	done
	[ -n "$img" ] || die "sid: no image package for $abi"
	rm -rf "$SID_ROOT/tmp/relaymap-img" && mkdir -p "$SID_ROOT/tmp/relaymap-img"
	run_quiet "$CACHE/sid/download.log" sid_run sh -c "cd /tmp/relaymap-img && apt-get -q download $img" ||
		die "sid: downloading $img failed"
	mkdir -p "$kd"
	extract_vmlinuz "$SID_ROOT/tmp/relaymap-img/${img}_"*.deb "$abi" "$kd/vmlinuz" || die "$abi: no vmlinuz in $img"
	rm -rf "$SID_ROOT/tmp/relaymap-img"
	touch "$kd/ready"
}

prepare_sid_kernel() {
	[ -e "$SID_ROOT/.relaymap-ready" ] || with_lock "$CACHE/sid.lock" sid_bootstrap
	with_lock "$CACHE/sid.lock" sid_update
	local abi
	abi=$(abi_from_meta sid_run apt-cache)
	if [ -z "$abi" ]; then
		with_lock "$CACHE/sid.lock" sid_update force
		abi=$(abi_from_meta sid_run apt-cache)
	fi
	[ -n "$abi" ] || die "sid: cannot resolve the ABI of linux-headers-cloud-amd64"
	if [ ! -e "$CACHE/kernels/$abi/ready" ] || [ ! -d "$SID_ROOT/usr/src/linux-headers-$abi" ]; then
		rm -f "$CACHE/kernels/$abi/ready"
		if ! with_lock "$CACHE/sid.lock" sid_fetch_kernel "$abi"; then
			say "sid: retrying with a fresh package index"
			with_lock "$CACHE/sid.lock" sid_update force
			abi=$(abi_from_meta sid_run apt-cache)
			[ -n "$abi" ] || die "sid: cannot resolve the ABI of linux-headers-cloud-amd64"
			with_lock "$CACHE/sid.lock" sid_fetch_kernel "$abi"
		fi
	fi
	KVER=$abi
	KDIR="/usr/src/linux-headers-$abi"
	VMLINUZ="$CACHE/kernels/$abi/vmlinuz"
	KBUILD=sid
}
