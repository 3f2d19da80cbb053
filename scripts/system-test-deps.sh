#!/bin/sh
# Makes sure the Debian packages the QEMU system tests need on the host are present: QEMU's
# aarch64 system emulator, the image tools (genimage, squashfs, FAT, ext4, partition tables),
# depmod for the arm64 kernel's module index, cpio for the initramfs, readelf (shared-library
# closure), qemu-user (asks the arm64 BusyBox for its applet list), OpenBSD netcat (one per
# forwarded guest connection, with -N), and the archive keyring with which the private arm64
# APT (board/qemu/fetch-debs.sh) checks Debian's signatures.
# Installs them when run as root, otherwise stops with the list of what is missing.
set -eu

missing=""
need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
need qemu-system-aarch64 qemu-system-arm
need genimage genimage
need mksquashfs squashfs-tools
need unsquashfs squashfs-tools
need mcopy mtools
need mkfs.vfat dosfstools
need sfdisk fdisk
need mkfs.ext4 e2fsprogs
need debugfs e2fsprogs
need depmod kmod
need cpio cpio
need dpkg-deb dpkg
need apt-get apt
need zstd zstd
need readelf binutils
need qemu-aarch64-static qemu-user-static
need flock util-linux
nc -h 2>&1 | grep -qE '^[[:space:]]+-N[[:space:]]' || missing="$missing netcat-openbsd"
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing="$missing debian-archive-keyring"

[ -z "$missing" ] && exit 0
# One package may be named by several commands.
missing=$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ')

if [ "$(id -u)" -ne 0 ]; then
  echo "system-test: missing Debian packages: $missing" >&2
  echo "system-test: install them with: sudo apt-get install --no-install-recommends $missing" >&2
  exit 1
fi
echo "system-test: installing Debian packages: $missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Other jobs on the same machine may hold the dpkg lock for a while: wait for it.
apt="apt-get -o DPkg::Lock::Timeout=600"
$apt update -qq
# shellcheck disable=SC2086 # the list is meant to split into words
$apt install -y -qq --no-install-recommends $missing >/dev/null
