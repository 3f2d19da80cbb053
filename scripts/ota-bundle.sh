#!/bin/sh
# A signed RAUC update bundle from the image build's slot contents (docs/firmware.md, "OTA bundles").
#
#   sh scripts/ota-bundle.sh [BOOT_VFAT ROOTFS_SQUASHFS [OUT]]
#
#   BOOT_VFAT        the boot partition's FAT image (default build/br-rpi4/images/bootA.vfat)
#   ROOTFS_SQUASHFS  the root filesystem (default build/br-rpi4/images/rootfs.squashfs)
#   OUT              the bundle to write (default next to ROOTFS: vigil-VERSION.raucb)
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
boot=${1:-$images/bootA.vfat}
rootfs=${2:-$images/rootfs.squashfs}
[ -r "$boot" ] || die "no boot image $boot (make image, or name one)"
[ -r "$rootfs" ] || die "no rootfs image $rootfs (make image, or name one)"
# The slot types in system.conf: a FAT filesystem image and a squashfs
fsck.vfat -n "$boot" >/dev/null 2>&1 || die "$boot is not a FAT filesystem image"
unsquashfs -s "$rootfs" >/dev/null 2>&1 || die "$rootfs is not a squashfs image"

version=${VIGIL_VERSION:-$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)}
case $version in
	*[!A-Za-z0-9._+~-]* | "") die "VIGIL_VERSION '$version': letters, digits and ._+~- only" ;;
esac
compatible=${VIGIL_COMPATIBLE:-vigil-rpi4}
agent_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$top/agent/package.json" | head -n 1)
[ -n "$agent_version" ] || die "no version in agent/package.json"
out=${3:-$(dirname "$rootfs")/vigil-$version.raucb}

keys=$(sh "$top/scripts/ota-keys.sh")
key=$(echo "$keys" | sed -n 's/^VIGIL_SIGNING_KEY=//p')
cert=$(echo "$keys" | sed -n 's/^VIGIL_SIGNING_CERT=//p')
keyring=$(echo "$keys" | sed -n 's/^VIGIL_KEYRING=//p')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The file names choose RAUC's update handlers: *.vfat onto a vfat slot, *.squashfs raw
cp "$boot" "$work/boot.vfat"
cp "$rootfs" "$work/rootfs.squashfs"
cat >"$work/manifest.raucm" <<MANIFEST
[update]
compatible=$compatible
version=$version
description=Vigil firmware $version (agent $agent_version)
build=$(date -u +%Y%m%dT%H%M%SZ)

[bundle]
format=verity

[image.boot]
filename=boot.vfat

[image.rootfs]
filename=rootfs.squashfs
MANIFEST

rm -f "$out"
rauc bundle --cert="$cert" --key="$key" --keyring="$keyring" "$work" "$out" >&2 ||
	die "rauc bundle failed"
rauc info --keyring="$keyring" "$out" >/dev/null 2>&1 || die "$out does not verify against $keyring"
echo "$out"
