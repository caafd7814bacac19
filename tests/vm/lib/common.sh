# shellcheck shell=bash
# tests/vm/lib/common.sh - logging, locking and apt helpers for tests/vm/run.
# Sourced by tests/vm/run; expects CACHE and REPO to be set.

# Progress goes to stderr so stdout carries only PASS/FAIL/SKIP lines and
# the closing line.
# The number is the seconds since the run started.
say() { printf 'vm: %4ss %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'vm: error: %s\n' "$*" >&2; exit 2; }

# run_quiet LOGFILE CMD... : run CMD with its output in LOGFILE; on failure
# show the tail of LOGFILE and return CMD's status.
run_quiet() {
	local log=$1 rc=0
	shift
	"$@" >"$log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		printf 'vm: command failed (rc %s): %s\n' "$rc" "$*" >&2
		tail -n 40 "$log" | sed 's/^/  | /' >&2
		printf 'vm: full output: %s\n' "$log" >&2
	fi
	return "$rc"
}

# with_lock FILE CMD... : run CMD holding an exclusive flock on FILE, so two
# runs (several engineers share this machine) never prepare the same cache
# entry or build directory at the same time.
with_lock() {
	local lock=$1
	shift
	mkdir -p "$(dirname "$lock")"
	(
		flock -w 3600 9 || die "timed out waiting for lock $lock"
		"$@"
	) 9>"$lock"
}

# file_age_s FILE : seconds since FILE was modified (huge if missing).
file_age_s() {
	local m
	m=$(stat -c %Y "$1" 2>/dev/null) || { echo 999999999; return; }
	echo $(($(date +%s) - m))
}

# --- host packages ---------------------------------------------------------

# What the harness itself needs on a fresh Debian 12:
#   qemu-system-x86  the VM (TCG)           busybox-static  the guest userland
#   cpio             packs the initramfs    debootstrap     the sid build folder (kernel 7)
#   dwarves          pahole: 6.12 headers ship a vmlinux, modules get BTF
#   gcc libc6-dev make  module build (gcc-12 = the compiler of 6.1 and 6.12)
#                    and static guest programs
#   debian-archive-keyring  Signed-By for the private apt indexes
# (flex, bison, bc, libelf-dev and kmod are not needed: Debian's
# linux-kbuild packages ship the host tools prebuilt, busybox has insmod.)
# zstd: modules of newer kernels are .ko.zst; e2fsprogs: the ext4 disk of
# rmvm.disk=1 boots (mkfs.ext4, and debugfs to copy a guest's export out).
HOST_PACKAGES=(qemu-system-x86 busybox-static cpio debootstrap dwarves gcc gcc-12 libc6-dev make
	debian-archive-keyring xz-utils zstd e2fsprogs)

ensure_host_packages() {
	local missing=() p
	for p in "${HOST_PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
			missing+=("$p")
		fi
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root: install them or run as root"
	say "installing host packages: ${missing[*]}"
	mkdir -p "$CACHE"
	export DEBIAN_FRONTEND=noninteractive
	local aopt=(-q -y -o Acquire::Retries=3 -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	# Update the index once if a package has no candidate (fresh machine).
	if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null)" ] ||
		! apt-get "${aopt[@]}" --no-install-recommends -s install "${missing[@]}" >/dev/null 2>&1; then
		run_quiet "$CACHE/apt-update.log" apt-get "${aopt[@]}" update || die "apt-get update failed"
	fi
	run_quiet "$CACHE/apt-install.log" apt-get "${aopt[@]}" --no-install-recommends install "${missing[@]}" ||
		die "apt-get install ${missing[*]} failed"
}

# --- private apt indexes -----------------------------------------------------
#
# Kernel packages are fetched with apt-get download from a private index in
# the cache (own sources.list and lists/), so the host's apt configuration is
# never touched and a backports or sid entry can never upgrade a host package.

DEBIAN_MIRROR=${RELAYMAP_VM_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${RELAYMAP_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Refresh an index older than this (seconds); RELAYMAP_VM_REFRESH=1 forces it.
INDEX_MAX_AGE=${RELAYMAP_VM_INDEX_MAX_AGE:-43200}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# papt_opts SET -> prints nothing; fills array PAPT with the apt options.
papt_setup() {
	local set=$1 d="$CACHE/apt/$1"
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/empty"
	case $set in
	bookworm)
		cat >"$d/sources.list.new" <<EOF
deb [signed-by=$KEYRING] $DEBIAN_MIRROR bookworm main
deb [signed-by=$KEYRING] $DEBIAN_MIRROR bookworm-updates main
deb [signed-by=$KEYRING] $DEBIAN_SECURITY_MIRROR bookworm-security main
EOF
		;;
	bookworm-backports)
		cat >"$d/sources.list.new" <<EOF
deb [signed-by=$KEYRING] $DEBIAN_MIRROR bookworm-backports main
EOF
		;;
	*) die "unknown apt set $set" ;;
	esac
	if cmp -s "$d/sources.list.new" "$d/sources.list"; then
		rm -f "$d/sources.list.new"
	else
		mv "$d/sources.list.new" "$d/sources.list"
		rm -f "$d/updated"
	fi
	PAPT=(-o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/empty"
		-o "Dir::Etc::PreferencesParts=$d/empty" -o "Dir::Etc::Preferences=$d/empty/none"
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o "APT::Sandbox::User=root"
		-o "Acquire::Languages=none" -o Acquire::Retries=3 -o Acquire::Check-Valid-Until=false -q)
}

# papt_update SET [force]: refresh the private index when stale.
papt_update() {
	local set=$1 force=${2:-} d="$CACHE/apt/$1"
	papt_setup "$set"
	if [ -n "$force" ] || [ "${RELAYMAP_VM_REFRESH:-0}" = 1 ] || [ "$(file_age_s "$d/updated")" -gt "$INDEX_MAX_AGE" ]; then
		say "updating package index ($set)"
		run_quiet "$d/update.log" apt-get "${PAPT[@]}" update || die "apt-get update ($set) failed"
		touch "$d/updated"
	fi
}

# papt SET apt-get|apt-cache ARGS...
papt() {
	local set=$1 tool=$2
	shift 2
	papt_setup "$set"
	"$tool" "${PAPT[@]}" "$@"
}

# abi_from_meta APTCMD... : print the ABI the headers metapackage points to,
# e.g. "6.1.0-56-cloud-amd64". APTCMD is a command prefix running apt-cache.
abi_from_meta() {
	"$@" depends linux-headers-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-headers-\([0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n1
}

# extract_blk_modules DEB ABI DEST: copy the modules a virtio disk needs
# (virtio_pci, virtio_blk and what they depend on, read from each module's
# .modinfo "depends=" since a .deb carries no modules.dep; ext4 is built
# into Debian's cloud kernels) out of DEB into DEST, decompressed, with
# DEST/order listing them in load order. Modules the kernel has built in
# are simply absent. Returns 1 if DEB has no virtio_blk module at all.
extract_blk_modules() {
	local deb=$1 abi=$2 dest=$3 tmp f n
	tmp=$(mktemp -d "$dest.XXXXXX")
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards \
		"./lib/modules/$abi/kernel/drivers/virtio/*" "./lib/modules/$abi/kernel/drivers/block/virtio_blk.ko*" \
		"./usr/lib/modules/$abi/kernel/drivers/virtio/*" "./usr/lib/modules/$abi/kernel/drivers/block/virtio_blk.ko*" \
		2>/dev/null || true
	rm -rf "$dest" && mkdir -p "$dest/all"
	while IFS= read -r f; do
		n=$(basename "$f")
		case $n in
		*.ko.xz) xz -dc "$f" >"$dest/all/${n%.xz}" ;;
		*.ko.zst) zstd -q -dc "$f" >"$dest/all/${n%.zst}" ;;
		*.ko) cp "$f" "$dest/all/$n" ;;
		esac || { rm -rf "$tmp"; return 1; }
	done < <(find "$tmp" -name '*.ko*' -type f)
	rm -rf "$tmp"
	if [ ! -f "$dest/all/virtio_blk.ko" ]; then
		rm -rf "$dest"
		return 1
	fi
	: >"$dest/order"
	blk_module_add "$dest" virtio_pci
	blk_module_add "$dest" virtio_blk
	rm -rf "$dest/all"
	touch "$dest/ready"
}

# blk_module_add DEST NAME: NAME's dependencies (depth first), then NAME,
# into DEST/order and DEST/, each once; a name without a file is built in.
blk_module_add() {
	local dest=$1 m=$2 d
	[ -f "$dest/all/$m.ko" ] || return 0
	grep -qx "$m.ko" "$dest/order" && return 0
	for d in $(tr '\0' '\n' <"$dest/all/$m.ko" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '); do
		blk_module_add "$dest" "$d"
	done
	cp "$dest/all/$m.ko" "$dest/$m.ko"
	echo "$m.ko" >>"$dest/order"
}

# extract_vmlinuz DEB ABI DEST: copy the kernel image out of DEB without
# installing it (no boot hooks). Looks in ./boot (<= 6.x) and
# ./usr/lib/modules/<abi>/ (sid's linux-binary-*).
extract_vmlinuz() {
	local deb=$1 abi=$2 dest=$3 tmp
	tmp=$(mktemp -d "$dest.XXXXXX")
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards \
		"./boot/vmlinuz-$abi" "./usr/lib/modules/$abi/vmlinuz" 2>/dev/null || true
	local f
	for f in "$tmp/boot/vmlinuz-$abi" "$tmp/usr/lib/modules/$abi/vmlinuz"; do
		if [ -f "$f" ]; then
			mv "$f" "$dest"
			rm -rf "$tmp"
			return 0
		fi
	done
	rm -rf "$tmp"
	return 1
}
