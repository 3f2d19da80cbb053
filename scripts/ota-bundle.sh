#!/bin/sh
# A signed RAUC update bundle from the image build's slot contents (docs/firmware.md, "OTA bundles").
#
#   sh scripts/ota-bundle.sh [BOOT_A_VFAT BOOT_B_VFAT ROOTFS_SQUASHFS [OUT]]
#
#   BOOT_A_VFAT      slot A's boot partition FAT image (default build/br-rpi4/images/bootA.vfat)
#   BOOT_B_VFAT      slot B's (default bootB.vfat beside it): they differ in cmdline.txt
#   ROOTFS_SQUASHFS  the root filesystem (default build/br-rpi4/images/rootfs.squashfs)
#   OUT              the bundle to write (default next to ROOTFS: vigil-VERSION.raucb)
#
# RAUC knows one image per slot class, so [image.boot] names bootA.vfat with an install hook
# (board/common/rauc/bundle-hook, shipped in the bundle as "hook") that writes bootA.vfat or
# bootB.vfat, whichever the target slot pair needs, and reads it back. SHA256SUMS in the
# bundle lists both. The same hook's install-check reads the whole payload before any slot is
# written, so a corrupt bundle is refused without touching the inactive slot.
#
#   VIGIL_VERSION        the firmware version in the manifest (default: git describe)
#   VIGIL_COMPATIBLE     default vigil-rpi4, as board/common/rauc/system.conf says
#   VIGIL_SIGNING_KEY, VIGIL_SIGNING_CERT, VIGIL_KEYRING: the release keys (scripts/ota-keys.sh);
#                        unset, the development keys in .keys/dev/ (made on demand)
#
# The bundle is in verity format, signed, and checked against the keyring before this prints
# its path (the only line on stdout).
set -eu
# shellcheck source=/dev/null # scripts/lib/debian-packages.sh, checked on its own
. "$(dirname "$0")/lib/debian-packages.sh"

top=$(cd "$(dirname "$0")/.." && pwd)

die() {
	echo "ota-bundle: $*" >&2
	exit 1
}

missing=""
command -v rauc >/dev/null 2>&1 || missing="$missing rauc"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v unsquashfs >/dev/null 2>&1 || missing="$missing squashfs-tools"
command -v fsck.vfat >/dev/null 2>&1 || missing="$missing dosfstools"
# shellcheck disable=SC2086 # the list is meant to split into words
install_missing ota-bundle $missing

images=$top/build/br-rpi4/images
case $# in
	0 | 3 | 4) ;;
	*) die "usage: ota-bundle.sh [BOOT_A_VFAT BOOT_B_VFAT ROOTFS_SQUASHFS [OUT]]" ;;
esac
boot_a=${1:-$images/bootA.vfat}
boot_b=${2:-$images/bootB.vfat}
rootfs=${3:-$images/rootfs.squashfs}
for boot in "$boot_a" "$boot_b"; do
	[ -r "$boot" ] || die "no boot image $boot (make image, or name one)"
	# The slot types in system.conf: a FAT filesystem image and a squashfs
	fsck.vfat -n "$boot" >/dev/null 2>&1 || die "$boot is not a FAT filesystem image"
done
[ -r "$rootfs" ] || die "no rootfs image $rootfs (make image, or name one)"
unsquashfs -s "$rootfs" >/dev/null 2>&1 || die "$rootfs is not a squashfs image"

version=${VIGIL_VERSION:-$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)}
case $version in
	*[!A-Za-z0-9._+~-]* | "") die "VIGIL_VERSION '$version': letters, digits and ._+~- only" ;;
esac
compatible=${VIGIL_COMPATIBLE:-vigil-rpi4}
agent_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$top/agent/package.json" | head -n 1)
[ -n "$agent_version" ] || die "no version in agent/package.json"
out=${4:-$(dirname "$rootfs")/vigil-$version.raucb}

keys=$(sh "$top/scripts/ota-keys.sh")
key=$(echo "$keys" | sed -n 's/^VIGIL_SIGNING_KEY=//p')
cert=$(echo "$keys" | sed -n 's/^VIGIL_SIGNING_CERT=//p')
keyring=$(echo "$keys" | sed -n 's/^VIGIL_KEYRING=//p')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The file names choose RAUC's update handlers: *.squashfs raw; the boot images go through
# the hook. Both boot images, their sums and the hook are inside the signed, verity-checked
# payload.
cp "$boot_a" "$work/bootA.vfat"
cp "$boot_b" "$work/bootB.vfat"
cp "$rootfs" "$work/rootfs.squashfs"
cp "$top/board/common/rauc/bundle-hook" "$work/hook"
chmod 0755 "$work/hook"
(cd "$work" && sha256sum bootA.vfat bootB.vfat >SHA256SUMS)
cat >"$work/manifest.raucm" <<MANIFEST
[update]
compatible=$compatible
version=$version
description=Vigil firmware $version (agent $agent_version)
build=$(date -u +%Y%m%dT%H%M%SZ)

[bundle]
format=verity

[hooks]
filename=hook
hooks=install-check

[image.boot]
filename=bootA.vfat
hooks=install

[image.rootfs]
filename=rootfs.squashfs
MANIFEST

rm -f "$out"
rauc bundle --cert="$cert" --key="$key" --keyring="$keyring" "$work" "$out" >&2 ||
	die "rauc bundle failed"
rauc info --keyring="$keyring" "$out" >/dev/null 2>&1 || die "$out does not verify against $keyring"
echo "$out"
