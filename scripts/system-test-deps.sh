#!/bin/sh
# Makes sure the Debian packages the QEMU system tests need on the host are present: QEMU's
# aarch64 system emulator, the image tools (genimage, squashfs, FAT, ext4, partition tables),
# depmod for the arm64 kernel's module index, cpio for the initramfs, readelf (shared-library
# closure), qemu-user (asks the arm64 BusyBox for its applet list), OpenBSD netcat (one per
# forwarded guest connection, with -N), openssl and rauc (the image's keyring, the update test's
# signed bundles), and the archive keyring with which the private arm64 APT
# (board/qemu/fetch-debs.sh) checks Debian's signatures.
# Installs them when run as root, otherwise stops with the list of what is missing.
set -eu
# shellcheck source=/dev/null # scripts/lib/debian-packages.sh, checked on its own
. "$(dirname "$0")/lib/debian-packages.sh"

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
# the image trusts a keyring (scripts/ota-keys.sh: openssl); the update test signs bundles (rauc)
need openssl openssl
need rauc rauc
nc -h 2>&1 | grep -qE '^[[:space:]]+-N[[:space:]]' || missing="$missing netcat-openbsd"
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing="$missing debian-archive-keyring"

# shellcheck disable=SC2086 # the list is meant to split into words
install_missing system-test $missing
