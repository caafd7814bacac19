#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# DKMS POST_BUILD of relaymap (dkms.conf): run in the build folder after
# the modules were built for kernel KERNELVER; installs that build's
# Module.symvers as DEVDIR/KERNELVER/Module.symvers, where out-of-tree
# modules point KBUILD_EXTRA_SYMBOLS (kmod/README.md, "Out-of-tree modules").
#   dkms-post-build.sh KERNELVER DEVDIR
set -eu
kver=${1:?kernel version}
devdir=${2:?relaymap source folder}
[ -f Module.symvers ] || { echo "relaymap: no Module.symvers in $(pwd) after the build" >&2; exit 1; }
install -d "$devdir/$kver"
install -m 0644 Module.symvers "$devdir/$kver/Module.symvers"
echo "relaymap: Module.symvers for $kver in $devdir/$kver"
