#!/bin/sh
# fetch-debs.sh: downloads the Debian arm64 packages the QEMU test image is made of, into a
# cache that outlives the checkout, and prints the cache directory. The packages stand in for
# what Buildroot builds for the Pi: the kernel (only for QEMU's -kernel; the Pi boots
# Buildroot's), BusyBox, glibc and libstdc++, ffmpeg, e2fsprogs and util-linux's partition
# tools.
#
# Uses a private APT configuration under the cache: /etc/apt and the host's dpkg database
# are never read or written, and no foreign architecture is added to the host. The package
# lists are refreshed when the wanted set changes or after VIGIL_DEBS_MAX_AGE_DAYS; in
# between, a rerun only checks that every file of the manifest is there (no network).
#
# Output, under $cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/vigil/qemu):
#   debs/*.deb          the packages and their dependency closure (no Recommends)
#   manifest            "kernel <package>" then one .deb file name per line
set -eu

# What the guest runs, plus the kernel. Recommends are off: only hard dependencies come along.
# rauc: the update client (the Pi image has Buildroot's). Debian builds its CLI as a client of
# `rauc service` on the system bus, so the test image also runs dbus-daemon (rauc-service holds
# the bus policy). rauc's own Depends pull in systemd and more: downloaded, never copied in
# (build-image.sh takes only the programs it names and their shared libraries).
PACKAGES="busybox-static libc6 libstdc++6 libgcc-s1 ffmpeg e2fsprogs fdisk util-linux chrony rauc rauc-service dbus-daemon"
# The kernel meta-package; its first linux-image-* dependency is the kernel itself.
KERNEL_META=linux-image-arm64
SUITE=${VIGIL_DEBIAN_SUITE:-bookworm}
MIRROR=${VIGIL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${VIGIL_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MAX_AGE_DAYS=${VIGIL_DEBS_MAX_AGE_DAYS:-30}

cache=${VIGIL_QEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil/qemu}
apt_root=$cache/apt
debs=$cache/debs
manifest=$cache/manifest
want="suite=$SUITE packages=$PACKAGES kernel=$KERNEL_META"

die() {
	echo "fetch-debs: $*" >&2
	exit 1
}

[ -r "$KEYRING" ] || die "$KEYRING is missing (Debian package debian-archive-keyring): run scripts/system-test-deps.sh"
mkdir -p "$cache"
# One fetch at a time (two test files may build the image at once)
exec 8>"$cache/fetch.lock"
flock 8

# Up to date: same wanted set, young enough, every file present.
if [ -r "$manifest" ] && [ "$(sed -n 1p "$manifest")" = "$want" ] &&
	[ -z "$(find "$manifest" -mtime +"$MAX_AGE_DAYS")" ]; then
	complete=yes
	# shellcheck disable=SC2013 # one file name per line, no blanks
	for f in $(sed '1,2d' "$manifest"); do
		[ -s "$debs/$f" ] || complete=no
	done
	if [ "$complete" = yes ]; then
		echo "$cache"
		exit 0
	fi
fi

mkdir -p "$apt_root/etc/apt/sources.list.d" "$apt_root/etc/apt/apt.conf.d" "$apt_root/etc/apt/preferences.d" \
	"$apt_root/var/lib/apt/lists/partial" "$apt_root/var/lib/dpkg" "$debs/partial"
# An empty dpkg database: apt thinks nothing is installed and downloads every dependency.
: >"$apt_root/var/lib/dpkg/status"
cat >"$apt_root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Architectures: arm64
Signed-By: $KEYRING

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Architectures: arm64
Signed-By: $KEYRING
EOF
cat >"$apt_root/apt.conf" <<EOF
Dir "$apt_root/";
Dir::State::status "$apt_root/var/lib/dpkg/status";
Dir::Cache::archives "$debs/";
Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d/";
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
EOF
APT_CONFIG=$apt_root/apt.conf
export APT_CONFIG

echo "fetch-debs: updating the arm64 package lists ($SUITE)" >&2
apt-get -q -q update >&2 || die "apt-get update failed (is $MIRROR reachable?)"
kernel=$(apt-cache depends "$KERNEL_META" | awk '/Depends: linux-image-/ { print $2; exit }')
[ -n "$kernel" ] || die "cannot tell which kernel $KERNEL_META depends on"

echo "fetch-debs: downloading $kernel and the closure of: $PACKAGES" >&2
# shellcheck disable=SC2086 # the list is meant to split into words
apt-get -q -q -y --download-only install $PACKAGES >&2 || die "apt-get install --download-only failed"
# The kernel alone: its own dependencies (initramfs-tools, kmod, ...) are host tools of a
# Debian system, not parts of this image.
(cd "$debs" && apt-get -q -q download "$kernel" >&2) || die "apt-get download $kernel failed"

# The manifest: exactly the versions apt chose now (older ones in the cache are removed).
# "Inst NAME (VERSION SUITE [ARCH])" -> NAME_VERSION_ARCH.deb, apt's file name (":" as %3a).
{
	echo "$want"
	echo "kernel $kernel"
	# shellcheck disable=SC2086
	apt-get -q -q -y -s install $PACKAGES |
		awk '$1 == "Inst" { v = $3; sub(/^\(/, "", v); gsub(/:/, "%3a", v)
			match($0, /\[[a-z0-9]+\]/); print $2 "_" v "_" substr($0, RSTART + 1, RLENGTH - 2) ".deb" }'
	(cd "$debs" && for k in "${kernel}_"*.deb; do echo "$k"; done | sort -V | tail -n 1)
} >"$manifest.tmp"
# shellcheck disable=SC2013 # one file name per line, no blanks
for f in $(sed '1,2d' "$manifest.tmp"); do
	[ -s "$debs/$f" ] || die "$f is not in $debs after the download"
done
mv "$manifest.tmp" "$manifest"
for f in "$debs"/*.deb; do
	grep -qxF "$(basename "$f")" "$manifest" || rm -f "$f"
done
count=$(($(wc -l <"$manifest") - 2))
echo "fetch-debs: $count packages, $(du -sm "$debs" | cut -f1) MB in $debs" >&2
echo "$cache"
