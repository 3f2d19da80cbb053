#!/bin/sh
# `make image`: the Raspberry Pi 4 SD card image, built by the pinned Buildroot LTS.
# Needs internet access (Buildroot itself, then ~55 source tarballs: toolchain, kernel,
# Pi firmware, packages), about 15 GB of free disk, and 1-3 hours on a 4-8 core machine
# the first time (docs/firmware.md). The agent comes from `make agent-bin`.
#
# Output: build/br-rpi4/images/ sdcard.img.xz, sdcard.img.bmap, sdcard.img, bootA.vfat,
# bootB.vfat, rootfs.squashfs, SHA256SUMS.
#
# Settings (environment): BR2_DL_DIR (a download cache to reuse; default build/dl),
# BR2_JLEVEL (parallel jobs), VIGIL_OFFLINE=1 (build from a filled BR2_DL_DIR without
# checking the network), BUILDROOT_GIT (where to clone Buildroot from).
set -eu

# Buildroot LTS 2026.02.3 (2026-06-16): the tag, and the commit it must resolve to.
BR_VERSION=2026.02.3
BR_COMMIT=679b9ead7620bbf193620d1ebf56f53c1764d37a
BUILDROOT_GIT=${BUILDROOT_GIT:-https://gitlab.com/buildroot.org/buildroot.git}
BOARD=rpi4
DEFCONFIG=vigil_${BOARD}_64_defconfig

top=$(cd "$(dirname "$0")/.." && pwd)
src=$top/build/buildroot-$BR_VERSION
out=$top/build/br-$BOARD
agent=$top/build/agent-bin/linux-arm64
export BR2_DL_DIR="${BR2_DL_DIR:-$top/build/dl}"

die() {
	echo "image: $*" >&2
	exit 1
}

online() {
	# Buildroot, the kernel and the Pi firmware come from GitLab and GitHub
	if command -v curl >/dev/null 2>&1; then
		curl -fsS --max-time 15 -o /dev/null -I https://github.com/ &&
			curl -fsS --max-time 15 -o /dev/null -I https://gitlab.com/
	elif command -v wget >/dev/null 2>&1; then
		wget -q -T 15 --spider https://github.com/ && wget -q -T 15 --spider https://gitlab.com/
	else
		die "neither curl nor wget is installed (Buildroot needs wget)"
	fi
}

if [ ! -x "$agent/vigil-agent" ] || [ ! -f "$agent/better_sqlite3.node" ]; then
	die "no agent in $agent (vigil-agent and better_sqlite3.node): run 'make agent-bin' first"
fi

if [ "${VIGIL_OFFLINE:-0}" != 1 ] && ! online; then
	die "no internet access. 'make image' downloads Buildroot $BR_VERSION and ~55 source
       tarballs (toolchain, Linux, Pi firmware, packages); run it on a machine that is online,
       or set VIGIL_OFFLINE=1 with BR2_DL_DIR holding every download ('make source' online)."
fi

if [ ! -f "$src/Makefile" ]; then
	echo "image: fetching Buildroot $BR_VERSION into $src"
	rm -rf "$src.part"
	git clone --quiet --depth 1 --branch "$BR_VERSION" "$BUILDROOT_GIT" "$src.part" ||
		die "could not clone Buildroot $BR_VERSION from $BUILDROOT_GIT"
	mv "$src.part" "$src"
fi
# Pinned: the tag must still name the commit it named when this script was written
if [ -d "$src/.git" ]; then
	got=$(git -C "$src" rev-parse HEAD)
	[ "$got" = "$BR_COMMIT" ] ||
		die "$src is at $got, not Buildroot $BR_VERSION ($BR_COMMIT); remove it and run again"
else
	grep -q "^export BR2_VERSION := $BR_VERSION\$" "$src/Makefile" ||
		die "$src is not Buildroot $BR_VERSION; remove it and run again"
fi

mkdir -p "$BR2_DL_DIR"
# Always from the committed defconfig (2 s). Buildroot does not rebuild a package whose
# options changed: after such a change, start over with 'rm -rf build/br-rpi4'.
make -C "$src" BR2_EXTERNAL="$top/buildroot" O="$out" "$DEFCONFIG"
start=$(date +%s)
make -C "$src" O="$out"
echo "image: built in $((($(date +%s) - start) / 60)) min: $out/images/sdcard.img.xz (+ .bmap)"
echo "image: write it with: make flash DEVICE=/dev/sdX"
