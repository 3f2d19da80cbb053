#!/bin/sh
# Makes sure the Debian packages `make agent-bin` needs are present: strip for both
# architectures, qemu-user and an arm64 sysroot to run the arm64 executable here (binfmt is
# not registered, so it runs as `qemu-aarch64-static`), and strace, with which the agent-bin
# test proves the executable writes nothing outside its data dir. Installs them when run as
# root, otherwise stops with the list of what is missing.
set -eu
# shellcheck source=/dev/null # scripts/lib/debian-packages.sh, checked on its own
. "$(dirname "$0")/lib/debian-packages.sh"

sysroot=/usr/aarch64-linux-gnu
missing=""
command -v strip >/dev/null 2>&1 || missing="$missing binutils"
command -v aarch64-linux-gnu-strip >/dev/null 2>&1 || missing="$missing binutils-aarch64-linux-gnu"
command -v qemu-aarch64-static >/dev/null 2>&1 || missing="$missing qemu-user-static"
[ -e "$sysroot/lib/ld-linux-aarch64.so.1" ] || missing="$missing libc6-arm64-cross"
[ -e "$sysroot/lib/libstdc++.so.6" ] || missing="$missing libstdc++6-arm64-cross"
command -v strace >/dev/null 2>&1 || missing="$missing strace"
command -v flock >/dev/null 2>&1 || missing="$missing util-linux"

# shellcheck disable=SC2086 # the list is meant to split into words
install_missing agent-bin $missing
