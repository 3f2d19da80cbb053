#!/bin/sh
# Buildroot post-image script: from BINARIES_DIR's kernel, DTBs, rpi-firmware/ and
# rootfs.squashfs, makes every artefact of a release:
#   bootA.vfat bootB.vfat   the boot slots (genimage-boot.cfg); B is what an update writes to p3
#   sdcard.img              the whole card (genimage.cfg: the tryboot A/B layout)
#   sdcard.img.bmap         its block map, for a fast "bmaptool copy"
#   sdcard.img.xz           the compressed card image (bmaptool and Raspberry Pi Imager read it)
#   SHA256SUMS
set -eu

: "${BINARIES_DIR:?run by Buildroot (BINARIES_DIR is not set)}"
: "${BUILD_DIR:?run by Buildroot (BUILD_DIR is not set)}"
BOARD_DIR=$(cd "$(dirname "$0")" && pwd)

# genimage copies --rootpath into its tmppath: give it an empty one, it only
# assembles images that already exist (as Buildroot's board/raspberrypi does).
ROOTPATH_TMP=$(mktemp -d)
trap 'rm -rf "$ROOTPATH_TMP"' EXIT

run_genimage() {
	rm -rf "$BUILD_DIR/genimage.tmp"
	genimage \
		--rootpath "$ROOTPATH_TMP" \
		--tmppath "$BUILD_DIR/genimage.tmp" \
		--inputpath "$BINARIES_DIR" \
		--outputpath "$BINARIES_DIR" \
		--config "$1"
}

run_genimage "$BOARD_DIR/genimage-boot.cfg"
run_genimage "$BOARD_DIR/genimage.cfg"

cd "$BINARIES_DIR"
bmaptool create -o sdcard.img.bmap sdcard.img
xz --threads=0 --keep --force sdcard.img
sha256sum bootA.vfat bootB.vfat rootfs.squashfs sdcard.img.xz sdcard.img.bmap > SHA256SUMS
echo "post-image: $BINARIES_DIR/sdcard.img.xz ($(du -h sdcard.img.xz | cut -f1)) and sdcard.img.bmap"
