#!/bin/sh
# `make flash DEVICE=/dev/sdX`: writes the SD card image to a card, after making sure the
# device is one: a whole, removable, unmounted disk that holds neither / nor /boot and is not
# bigger than an SD card. FORCE=1 accepts a non-removable or bigger disk (a built-in card
# reader can report "not removable"); nothing accepts a mounted or system disk.
#
# Uses bmaptool when it and the .bmap are there (writes only the used blocks), else dd.
# Settings (environment): IMAGE (default build/br-rpi4/images/sdcard.img, or its .xz),
# FORCE=1, DRY_RUN=1 (run every check, write nothing).
#
# Card settings (docs/firmware.md, "Card settings (vigil.txt)"): with CLOUD=, CLAIM=, SETUP_PIN=,
# WIFI_SSID=, WIFI_PASSWORD=, WIFI_COUNTRY=, ADDRESS=, GATEWAY= or DNS= set, vigil.txt is
# written onto the card's first partition after the image (scripts/card-settings.sh). They are
# checked before anything is written; a SETUP_PIN not given is made up and printed.
set -eu

MAX_GB=256

top=$(cd "$(dirname "$0")/.." && pwd)
DEVICE=${1:-${DEVICE:-}}
IMAGE=${IMAGE:-$top/build/br-rpi4/images/sdcard.img}
FORCE=${FORCE:-0}
DRY_RUN=${DRY_RUN:-0}

die() {
	echo "flash: $*" >&2
	exit 1
}

[ -n "$DEVICE" ] || die "usage: make flash DEVICE=/dev/sdX [CLOUD=URL CLAIM=CODE ...] (the whole card, e.g. /dev/sdb or /dev/mmcblk0)"

# The card settings first: a mistake in them stops everything before the card is touched
settings=""
if sh "$top/scripts/card-settings.sh" given; then
	settings=$(mktemp)
	trap 'rm -f "$settings"' EXIT
	sh "$top/scripts/card-settings.sh" make "$settings"
fi
[ -e "$DEVICE" ] || die "$DEVICE does not exist"
[ -b "$DEVICE" ] || die "$DEVICE is not a block device"

dev=$(readlink -f "$DEVICE")
name=${dev##*/}
sys=/sys/block/$name
[ -d "$sys" ] || die "$DEVICE is a partition or not a disk: give the whole card (e.g. /dev/sdb, not /dev/sdb1)"

# disks_of MAJ:MIN: the whole disk(s) behind a block device (a partition's disk; the
# disks under a device-mapper or RAID device)
disks_of() {
	b=/sys/dev/block/$1
	[ -e "$b" ] || return 0
	b=$(readlink -f "$b")
	[ -e "$b/partition" ] && b=${b%/*}
	if [ -n "$(ls "$b/slaves" 2>/dev/null)" ]; then
		for s in "$b"/slaves/*; do
			disks_of "$(cat "$s/dev")"
		done
	else
		echo "${b##*/}"
	fi
}

# Anything of it mounted (by device number: /dev/root and symlinks cannot hide it): never
while read -r _ _ devnum _ mnt _; do
	for d in $(disks_of "$devnum"); do
		[ "$d" = "$name" ] || continue
		case "$mnt" in
			/ | /boot | /boot/* | /usr | /var | /home)
				die "$DEVICE holds $mnt: it is a system disk, refusing" ;;
		esac
		die "$DEVICE is mounted (on $mnt): unmount it first"
	done
done < /proc/self/mountinfo
# In use as swap, or held by a device mapper / RAID / LVM: never
while read -r src _; do
	case "$src" in
		"/dev/$name"*) die "$src is in use as swap: refusing" ;;
	esac
done < /proc/swaps
for p in "$sys" "$sys"/"$name"*; do
	if [ -d "$p/holders" ] && [ -n "$(ls "$p/holders" 2>/dev/null)" ]; then
		die "$DEVICE is in use (${p##*/} is held by $(ls "$p/holders")): refusing"
	fi
done

bytes=$(($(cat "$sys/size") * 512))
[ "$bytes" -gt 0 ] || die "$DEVICE has no medium (is the card in the reader?)"
gb=$((bytes / 1000000000))
if [ "$gb" -gt "$MAX_GB" ] && [ "$FORCE" != 1 ]; then
	die "$DEVICE is ${gb} GB, more than an SD card (${MAX_GB} GB): refusing (FORCE=1 to insist)"
fi
if [ "$(cat "$sys/removable")" != 1 ] && [ "$FORCE" != 1 ]; then
	die "$DEVICE is not a removable disk: refusing (a built-in card reader may say so: FORCE=1 to insist)"
fi

# The image: sdcard.img, else sdcard.img.xz (bmaptool reads both; dd gets it through xz)
if [ ! -f "$IMAGE" ] && [ -f "$IMAGE.xz" ]; then
	IMAGE=$IMAGE.xz
fi
[ -f "$IMAGE" ] || die "no image at $IMAGE: run 'make image' first (or set IMAGE=)"
bmap=${IMAGE%.xz}.bmap
model=$(cat "$sys/device/model" 2>/dev/null || echo "?")

echo "flash: $IMAGE -> $DEVICE ($model, ${gb} GB)"
if [ -n "$settings" ]; then
	echo "flash: then vigil.txt on its first partition:"
	sed 's/^\(WIFI_PASSWORD=\).\{1,\}/\1(not shown)/; s/^/    /' "$settings"
fi
if [ "$DRY_RUN" = 1 ]; then
	echo "flash: DRY_RUN=1: every check passed, nothing written"
	exit 0
fi
[ -w "$DEVICE" ] || die "cannot write $DEVICE: run as root (sudo make flash DEVICE=$DEVICE)"

if command -v bmaptool >/dev/null 2>&1 && [ -f "$bmap" ]; then
	bmaptool copy --bmap "$bmap" "$IMAGE" "$DEVICE"
else
	case "$IMAGE" in
		*.xz)
			# A pipe hides xz's exit status: test the whole file first
			xz -t "$IMAGE"
			xz -dc "$IMAGE" | dd of="$DEVICE" bs=4M conv=fsync
			;;
		*) dd if="$IMAGE" of="$DEVICE" bs=4M conv=fsync ;;
	esac
fi
sync
if [ -n "$settings" ]; then
	# The new partition table is read from the card itself: the kernel's view of the old one
	# (sdX1...) may be stale until the card is re-inserted
	sh "$top/scripts/card-settings.sh" put "$settings" "$DEVICE"
fi
echo "flash: done; the card can be removed"
