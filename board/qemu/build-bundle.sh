#!/bin/sh
# build-bundle.sh VERSION [EXTRA_DIR [OUT]]: a signed RAUC bundle for the QEMU test image
# (docs/system-tests.md, "Updates"), i.e. a release as a device would download it, made of the
# test image's own slot contents:
#   - boot images: build/qemu/images/bootA.vfat and bootB.vfat, as build-image.sh made them;
#   - rootfs: build-image.sh's rootfs.squashfs with /etc/vigil/release saying
#     VIGIL_FIRMWARE_VERSION=VERSION, and EXTRA_DIR (optional) laid over it, e.g. a broken
#     /etc/default/vigil-agent for a release whose agent never gets healthy;
#   - signed by scripts/ota-bundle.sh (the same script a release uses; dev keys unless the
#     VIGIL_SIGNING_* variables say otherwise), so the image's keyring accepts it.
# Prints the bundle's path (default build/qemu/bundles/vigil-VERSION.raucb). Runs
# build-image.sh first (a no-op when the image is up to date), and does nothing when the bundle
# was already made from the same image, version and extra files.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
images=build/qemu/images
level=${VIGIL_SQUASHFS_LEVEL:-3}

die() {
	echo "qemu-bundle: $*" >&2
	exit 1
}

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
	die "usage: build-bundle.sh VERSION [EXTRA_DIR [OUT]]"
fi
version=$1
case $version in
	*[!A-Za-z0-9._+~-]* | "") die "VERSION '$version': letters, digits and ._+~- only" ;;
esac
extra=${2:-}
[ -z "$extra" ] || [ -d "$extra" ] || die "EXTRA_DIR $extra is not a directory"
out=${3:-build/qemu/bundles/vigil-$version.raucb}
mkdir -p "$(dirname "$out")"

sh board/qemu/build-image.sh >&2 || die "build-image.sh failed"
PATH=$PATH:/usr/sbin:/sbin

# The same image stays in place while this reads it (build-image.sh holds this lock to write)
exec 9>"build/qemu/build.lock"
flock 9

stamp=$(
	{
		cat "$images/.stamp"
		echo "version=$version level=$level"
		[ -z "$extra" ] || (cd "$extra" && find . -type f | LC_ALL=C sort | xargs -r sha256sum)
		sha256sum scripts/ota-bundle.sh board/common/rauc/bundle-hook
	} | sha256sum | cut -d' ' -f1
)
if [ -s "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "qemu-bundle: up to date ($out)" >&2
	echo "$out"
	exit 0
fi
rm -f "$out.stamp"
t0=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT
unsquashfs -q -n -d "$work/rootfs" "$images/rootfs.squashfs" >/dev/null || die "unsquashfs failed"
release=$work/rootfs/etc/vigil/release
[ -f "$release" ] || die "the image has no /etc/vigil/release"
# The release file is made by post-build.sh; only its version line changes
{
	echo "VIGIL_FIRMWARE_VERSION=$version"
	grep -v '^VIGIL_FIRMWARE_VERSION=' "$release"
} >"$work/release"
cp "$work/release" "$release"
if [ -n "$extra" ]; then
	cp -a "$extra/." "$work/rootfs/"
fi
mksquashfs "$work/rootfs" "$work/rootfs.squashfs" -noappend -all-root -comp zstd -Xcompression-level "$level" \
	-quiet -no-progress >/dev/null || die "mksquashfs failed"
t1=$(date +%s)
VIGIL_VERSION=$version sh scripts/ota-bundle.sh "$images/bootA.vfat" "$images/bootB.vfat" "$work/rootfs.squashfs" "$out" \
	>/dev/null || die "ota-bundle.sh failed"
echo "$stamp" >"$out.stamp"
echo "qemu-bundle: $out ($(($(stat -c %s "$out") / 1048576)) MiB): rootfs $((t1 - t0)) s, bundle $(($(date +%s) - t1)) s" >&2
echo "$out"
