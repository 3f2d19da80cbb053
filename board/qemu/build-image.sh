#!/bin/sh
# build-image.sh: the QEMU test image (docs/system-tests.md). The same rootfs overlay, init
# scripts, agent executable and partition layout as the Pi image, assembled from Debian's
# arm64 packages instead of a Buildroot build, for QEMU's aarch64 "virt" machine.
#
#   layer                                   Pi image (Buildroot)        QEMU test image
#   skeleton: /etc/passwd, rcS/rcK, syslog, Buildroot's skeleton and     board/qemu/skeleton/
#     network (DHCP on eth0)                   packages
#   BusyBox, glibc, libstdc++, ffmpeg,      built by Buildroot          Debian arm64 .debs
#     e2fsprogs, sfdisk, partx, blkid                                      (board/qemu/fetch-debs.sh)
#   the agent package                       buildroot/package/vigil-agent: the same install
#                                             commands, read from vigil-agent.mk
#   rootfs overlay, post-build script       as the defconfig says (default: board/common/rootfs-overlay,
#                                             board/rpi4/post-build.sh): the same files
#   test-only additions                     none                        board/qemu/rootfs-overlay/
#   kernel                                  Buildroot's, drivers built in  Debian's + initramfs
#   boot slots                              board/rpi4/genimage-boot.cfg  board/qemu/genimage-boot.cfg
#   card layout                             board/rpi4/genimage.cfg: the same file
#
# Output in build/qemu/images/: sdcard.img (sparse), rootfs.squashfs, bootA.vfat, bootB.vfat,
# Image, initrd.gz, sizes.txt. Incremental: nothing is rebuilt when no input changed
# (~0.5 s). Environment: VIGIL_SQUASHFS_LEVEL (zstd level, default 3: fast to build; the
# release image uses Buildroot's setting), VIGIL_AGENT_BIN_DIR (default build/agent-bin).
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
board=board/qemu
out=build/qemu/images
work=build/qemu/work
level=${VIGIL_SQUASHFS_LEVEL:-3}
agent_bin=${VIGIL_AGENT_BIN_DIR:-build/agent-bin}
agent_pkg=buildroot/package/vigil-agent
defconfig=""
for f in buildroot/configs/*_defconfig; do
	[ -f "$f" ] && defconfig=$f && break
done

die() {
	echo "qemu-image: $*" >&2
	exit 1
}
step() {
	echo "qemu-image: $*" >&2
}

sh scripts/system-test-deps.sh
PATH=$PATH:/usr/sbin:/sbin
cache=$(sh "$board/fetch-debs.sh")
manifest=$cache/manifest

# The agent executable: built by `make agent-bin` (incremental) when the script is there.
if [ -z "${VIGIL_AGENT_BIN_DIR:-}" ] && [ -f scripts/agent-bin.sh ]; then
	sh scripts/agent-bin.sh >&2 || die "scripts/agent-bin.sh failed"
fi
[ -x "$agent_bin/linux-arm64/vigil-agent" ] || die "$agent_bin/linux-arm64/vigil-agent is missing: run 'make agent-bin'"
[ -f "$agent_bin/linux-arm64/better_sqlite3.node" ] || die "$agent_bin/linux-arm64/better_sqlite3.node is missing: run 'make agent-bin'"

# What the defconfig says about overlays and the post-build script (defaults until it exists)
br_var() { # br_var NAME DEFAULT: a BR2_ string option, $(BR2_EXTERNAL_VIGIL_PATH) resolved
	v=""
	[ -n "$defconfig" ] && v=$(sed -n "s/^$1=\"\(.*\)\"$/\1/p" "$defconfig")
	[ -n "$v" ] || v=$2
	# shellcheck disable=SC2016 # literal make variables
	echo "$v" | sed 's#\$(BR2_EXTERNAL_VIGIL_PATH)#buildroot#g; s#\$(BR2_EXTERNAL)#buildroot#g'
}
overlays=$(br_var BR2_ROOTFS_OVERLAY board/common/rootfs-overlay)
post_build=$(br_var BR2_ROOTFS_POST_BUILD_SCRIPT board/rpi4/post-build.sh)
for o in $overlays; do [ -d "$o" ] || die "rootfs overlay $o is missing"; done

mkdir -p "$out" "$work"
exec 9>"build/qemu/build.lock"
flock 9

# The keyring post-build.sh installs (VIGIL_KEYRING, else the development CA): an input too
keyring=${VIGIL_KEYRING:-$(VIGIL_SIGNING_KEY='' VIGIL_SIGNING_CERT='' sh scripts/ota-keys.sh | sed -n 's/^VIGIL_KEYRING=//p')}
[ -s "$keyring" ] || die "no keyring $keyring"

# Up to date? Every input's content, and the settings.
stamp=$(
	{
		echo "level=$level overlays=$overlays post_build=$post_build"
		cat "$keyring"
		cat "$manifest"
		cat "$agent_bin/.stamp" 2>/dev/null || ls -lL --time-style=+%s "$agent_bin/linux-arm64/"
		# shellcheck disable=SC2086 # overlays is a list
		find "$board" $overlays "$post_build" "$agent_pkg" board/rpi4 board/common/rauc scripts/ota-keys.sh scripts/system-test-deps.sh $defconfig \
			-type f 2>/dev/null | LC_ALL=C sort | xargs sha256sum
	} | sha256sum | cut -d' ' -f1
)
if [ -f "$out/sdcard.img" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "qemu-image: up to date ($out/sdcard.img)" >&2
	exit 0
fi
rm -f "$out/.stamp"
t0=$(date +%s)

# 1. The packages, unpacked once per manifest (the kernel apart)
debroot=$work/debroot
kernel_pkg=$(sed -n 's/^kernel //p' "$manifest")
manifest_sum=$(sha256sum <"$manifest" | cut -d' ' -f1)
if [ "$(cat "$debroot.stamp" 2>/dev/null)" != "$manifest_sum" ]; then
	step "unpacking $(($(wc -l <"$manifest") - 2)) Debian arm64 packages"
	rm -rf "$debroot" "$work/kernel" "$debroot.stamp"
	mkdir -p "$debroot" "$work/kernel"
	# shellcheck disable=SC2013 # one file name per line, no blanks
	for f in $(sed '1,2d' "$manifest"); do
		case "$f" in
			"${kernel_pkg}_"*) dpkg-deb -x "$cache/debs/$f" "$work/kernel" ;;
			*) dpkg-deb -x "$cache/debs/$f" "$debroot" ;;
		esac
	done
	kver=$(ls "$work/kernel/lib/modules")
	depmod -b "$work/kernel" "$kver"
	echo "$manifest_sum" >"$debroot.stamp"
fi
kver=$(ls "$work/kernel/lib/modules")

# 2. The root filesystem
rootfs=$work/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs"
step "assembling the root filesystem"
#   Skeleton (Buildroot's skeleton-init-sysv layout: /var links into the tmpfs mounts)
for d in bin sbin lib usr/bin usr/sbin usr/lib dev proc sys tmp run root data var/lib etc mnt \
	etc/network/if-pre-up.d etc/network/if-up.d etc/network/if-down.d etc/network/if-post-down.d; do
	mkdir -p "$rootfs/$d"
done
for l in log cache spool tmp; do ln -s ../tmp "$rootfs/var/$l"; done
ln -s ../run "$rootfs/var/run"
ln -s ../run/lock "$rootfs/var/lock"
ln -s ../tmp/resolv.conf "$rootfs/etc/resolv.conf"
ln -s ../proc/self/mounts "$rootfs/etc/mtab"
cp -a "$board/skeleton/." "$rootfs/"
chmod 0600 "$rootfs/etc/shadow"

#   Programs from the packages: what the init scripts and the agent run
#   (rauc and its D-Bus policy: the Pi's BR2_PACKAGE_RAUC; dbus-daemon only because Debian's rauc
#   CLI needs `rauc service` on a system bus, board/qemu/rootfs-overlay/etc/init.d/S30vigil-systest-rauc)
for p in bin/busybox usr/bin/ffmpeg sbin/e2fsck sbin/mke2fs sbin/resize2fs sbin/tune2fs sbin/sfdisk \
	usr/bin/partx sbin/blkid usr/sbin/chronyd etc/mke2fs.conf \
	usr/bin/rauc usr/bin/dbus-daemon usr/share/dbus-1/system.d/de.pengutronix.rauc.conf; do
	[ -e "$debroot/$p" ] || die "$p is not in the packages"
	mkdir -p "$rootfs/$(dirname "$p")"
	cp -L "$debroot/$p" "$rootfs/$p"
done
ln -s mke2fs "$rootfs/sbin/mkfs.ext4"
ln -s e2fsck "$rootfs/sbin/fsck.ext4"
#   BusyBox applets where no real program is (its list, asked of the arm64 binary itself)
if command -v qemu-aarch64-static >/dev/null 2>&1; then
	applets=$(qemu-aarch64-static "$rootfs/bin/busybox" --list-full)
else
	die "qemu-aarch64-static is needed to list BusyBox's applets (Debian package qemu-user-static)"
fi
for a in $applets; do
	[ -e "$rootfs/$a" ] || [ -L "$rootfs/$a" ] && continue
	mkdir -p "$rootfs/$(dirname "$a")"
	ln -s /bin/busybox "$rootfs/$a"
done

#   The agent package: the install commands of vigil-agent.mk, run as Buildroot would
step "installing the agent as $agent_pkg/vigil-agent.mk does"
# Buildroot copies the package's local site (BR2_PACKAGE_VIGIL_AGENT_BINARY_DIR, i.e. the
# agent-bin folder) into $(@D) and runs the .mk's install commands from there.
site=$(cd "$agent_bin" && pwd -P)
installs=$(awk '
	{ line = line $0 }
	/\\$/ { sub(/\\$/, "", line); next }
	{ if (line ~ /^[ \t]*\$\(INSTALL\)/) print line; line = "" }
' "$agent_pkg/vigil-agent.mk" | sed \
	-e "s#\$(INSTALL)#install#" \
	-e "s#\$(@D)#$site#g" \
	-e "s#\$(VIGIL_AGENT_PKGDIR)#$top/$agent_pkg#g" \
	-e "s#\$(VIGIL_AGENT_ARCH)#arm64#g" \
	-e "s#\$(TARGET_DIR)#$top/$rootfs#g")
[ -n "$installs" ] || die "found no \$(INSTALL) command in $agent_pkg/vigil-agent.mk"
# shellcheck disable=SC2016 # a literal "$(" left over
case "$installs" in *'$('*) die "unknown make variable in $agent_pkg/vigil-agent.mk: $installs" ;; esac
echo "$installs" | while read -r cmd; do
	# shellcheck disable=SC2086 # one install command, split into its words
	$cmd || die "failed: $cmd"
done

#   Shared libraries: everything the programs above need (ELF NEEDED, recursively), taken
#   from the packages. Alternatives (libblas.so.3 -> blas/) are resolved to the real file.
step "resolving shared libraries"
libdirs="lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu"
find_lib() {
	for d in $libdirs; do
		[ -e "$debroot/$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	hit=$(find "$debroot/usr/lib/aarch64-linux-gnu" -mindepth 2 -name "$1" | head -n 1)
	[ -n "$hit" ] && { echo "usr/lib/aarch64-linux-gnu/$1 ${hit#"$debroot"/}"; return 0; }
	return 1
}
todo=$(find "$rootfs" -type f \( -perm -u+x -o -name '*.so*' -o -name '*.node' \) | while read -r f; do
	head -c 4 "$f" | grep -q 'ELF' && echo "$f"
done)
seen=" "
while [ -n "$todo" ]; do
	next=""
	for f in $todo; do
		for n in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			case "$seen" in *" $n "*) continue ;; esac
			seen="$seen$n "
			where=$(find_lib "$n") || die "$n (needed by ${f#"$rootfs"/}) is in no package"
			dest=${where%% *}
			src=${where#* }
			mkdir -p "$rootfs/$(dirname "$dest")"
			cp -L "$debroot/$src" "$rootfs/$dest"
			next="$next $rootfs/$dest"
		done
	done
	todo=$next
done
ln -sf aarch64-linux-gnu/ld-linux-aarch64.so.1 "$rootfs/lib/ld-linux-aarch64.so.1"
[ -e "$rootfs/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1" ] || die "the dynamic loader was not picked up"

#   The board's overlays and post-build script (the defconfig's), then the test-only layer
for o in $overlays; do
	step "rootfs overlay $o"
	cp -a "$o/." "$rootfs/"
done
step "post-build $post_build"
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s) sh "$post_build" "$top/$rootfs" >&2
# The test layer adds files and never replaces one of the real image
(cd "$board/rootfs-overlay" && find . -type f) | while read -r f; do
	[ ! -e "$rootfs/$f" ] || die "$board/rootfs-overlay/$f would replace a file of the real image"
done
cp -a "$board/rootfs-overlay/." "$rootfs/"

# 3. squashfs (Buildroot: -noappend, files owned by root)
step "mksquashfs (zstd level $level)"
rm -f "$work/rootfs.squashfs"
mksquashfs "$rootfs" "$work/rootfs.squashfs" -noappend -all-root -comp zstd -Xcompression-level "$level" \
	-quiet -no-progress >/dev/null

# 4. The initramfs: BusyBox, the modules (with their dependencies, in order), /init
step "initramfs"
initramfs=$work/initramfs
rm -rf "$initramfs"
mkdir -p "$initramfs/bin" "$initramfs/dev" "$initramfs/proc" "$initramfs/sys" "$initramfs/newroot" \
	"$initramfs/lib/modules"
cp "$rootfs/bin/busybox" "$initramfs/bin/busybox"
for a in sh mount umount insmod sleep cat mkdir switch_root echo poweroff; do
	ln -s busybox "$initramfs/bin/$a"
done
install -m 0755 "$board/initramfs-init" "$initramfs/init"
mods=$work/kernel/lib/modules/$kver
resolve_module() ( # prints the module's dependencies (deepest first), then the module
	line=$(grep -E "/$1\.ko(\.[a-z]+)?:" "$mods/modules.dep") || exit 1
	for d in ${line#*:}; do
		resolve_module "$(basename "$d" | sed 's/\.ko.*//')"
	done
	echo "${line%%:*}"
)
grep -v '^#' "$board/modules" | grep . | while read -r m; do
	resolve_module "$(echo "$m" | tr - _)" 2>/dev/null || resolve_module "$m"
done | awk '!seen[$0]++' | while read -r p; do
	cp "$mods/$p" "$initramfs/lib/modules/"
	basename "$p" >>"$initramfs/lib/modules/load.order"
done
grep -v '^#' "$board/modules" | grep . | while read -r m; do
	grep -q "^$m\.ko" "$initramfs/lib/modules/load.order" ||
		grep -q "^$(echo "$m" | tr - _)\.ko" "$initramfs/lib/modules/load.order" || die "module $m is missing from the initramfs"
done
(cd "$initramfs" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -6) >"$work/initrd.gz"

# 5. Boot slots and the card, with genimage (the Pi's layout file)
step "genimage: boot slots ($board/genimage-boot.cfg), card (board/rpi4/genimage.cfg)"
input=$work/input
rm -rf "$input"
mkdir -p "$input/rpi-firmware"
cp board/rpi4/config.txt board/rpi4/cmdline-a.txt board/rpi4/cmdline-b.txt board/rpi4/autoboot.txt "$input/rpi-firmware/"
cp "$work/kernel/boot/vmlinuz-$kver" "$input/Image"
cp "$work/initrd.gz" "$input/initrd.gz"
ln -s ../rootfs.squashfs "$input/rootfs.squashfs"
emptyroot=$work/genimage-root
mkdir -p "$emptyroot"
for cfg in "$board/genimage-boot.cfg" board/rpi4/genimage.cfg; do
	rm -rf "$work/genimage.tmp"
	genimage --rootpath "$emptyroot" --tmppath "$work/genimage.tmp" --inputpath "$input" \
		--outputpath "$input" --config "$cfg" >"$work/genimage.log" 2>&1 ||
		{ cat "$work/genimage.log" >&2; die "genimage $cfg failed"; }
done

for f in sdcard.img bootA.vfat bootB.vfat Image initrd.gz; do
	mv -f "$input/$f" "$out/$f.new"
	mv -f "$out/$f.new" "$out/$f"
done
cp "$work/rootfs.squashfs" "$out/rootfs.squashfs"

# 6. Sizes, for bench/qemu.bench.ts
{
	echo "image_bytes $(stat -c %s "$out/sdcard.img")"
	echo "image_allocated_bytes $(($(stat -c %b "$out/sdcard.img") * $(stat -c %B "$out/sdcard.img")))"
	echo "rootfs_squashfs_bytes $(stat -c %s "$out/rootfs.squashfs")"
	echo "rootfs_unpacked_bytes $(du -sb "$rootfs" | cut -f1)"
	echo "agent_bytes $(stat -c %s "$rootfs/usr/bin/vigil-agent")"
	echo "squashfs_level $level"
	echo "kernel $kver"
} >"$out/sizes.txt"
echo "$stamp" >"$out/.stamp"
step "$out/sdcard.img: rootfs $(($(stat -c %s "$out/rootfs.squashfs") / 1048576)) MiB squashfs, $(($(date +%s) - t0)) s"
