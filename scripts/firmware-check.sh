#!/bin/sh
# The firmware checks that run without Buildroot (CI cannot run it: docs/firmware.md).
#
#   sh scripts/firmware-check.sh deps              install the Debian tools below (as root), else name them
#   sh scripts/firmware-check.sh kconfig [TREE]    parse TREE/Config.in (default buildroot/) with kconfiglib
#   sh scripts/firmware-check.sh shellcheck        every shell script under buildroot/, board/, scripts/
#   sh scripts/firmware-check.sh shell-scripts     list them
#   sh scripts/firmware-check.sh genimage [OUT]    the real genimage configs on dummy inputs; checks the table
#   sh scripts/firmware-check.sh all               deps, kconfig, shellcheck, genimage
#
# With a Buildroot checkout (never committed; `make image` fetches one), the dev-loop check:
#   sh scripts/firmware-check.sh buildroot DIR     defconfig == savedefconfig output, check-package clean
set -eu
# shellcheck source=/dev/null # scripts/lib/debian-packages.sh, checked on its own
. "$(dirname "$0")/lib/debian-packages.sh"

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
DEFCONFIG=buildroot/configs/vigil_rpi4_64_defconfig
BOARD=board/rpi4
# Debian's python3 has kconfiglib (python3-kconfiglib); another python3 first on PATH may not
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3

die() {
	echo "firmware-check: $*" >&2
	exit 1
}

# --- deps ---------------------------------------------------------------------
deps() {
	missing=""
	"$PYTHON" -c 'import kconfiglib' 2>/dev/null || missing="$missing python3-kconfiglib"
	command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
	command -v genimage >/dev/null 2>&1 || missing="$missing genimage"
	command -v mksquashfs >/dev/null 2>&1 || missing="$missing squashfs-tools"
	command -v mcopy >/dev/null 2>&1 || missing="$missing mtools"
	command -v mkfs.vfat >/dev/null 2>&1 || missing="$missing dosfstools"
	command -v mkfs.ext4 >/dev/null 2>&1 || missing="$missing e2fsprogs"
	command -v sfdisk >/dev/null 2>&1 || missing="$missing fdisk"
	# The card scripts' tests run them under BusyBox's sh too (the device's shell), and check
	# the Wi-Fi key the network script gets from wpa_passphrase
	command -v busybox >/dev/null 2>&1 || missing="$missing busybox"
	command -v wpa_passphrase >/dev/null 2>&1 || missing="$missing wpasupplicant"
	# shellcheck disable=SC2086 # the list is meant to split into words
	install_missing firmware-check $missing
}

# --- kconfig ------------------------------------------------------------------
# Buildroot's own symbols that the external tree refers to, as Buildroot declares
# them (the ffmpeg ones copied with their dependencies). Every reference to a
# symbol missing here is an error: a typo in a "depends on" fails the check.
# shellcheck disable=SC2016 # $BR2_EXTERNAL_VIGIL_PATH is for kconfig to expand
KCONFIG_STUB='
mainmenu "Buildroot symbols the Vigil tree refers to"
config BR2_aarch64
	def_bool y
config BR2_x86_64
	bool
config BR2_arm
	bool
config BR2_TOOLCHAIN_USES_GLIBC
	def_bool y
config BR2_INSTALL_LIBSTDCPP
	def_bool y
config BR2_TOOLCHAIN_HAS_THREADS
	def_bool y
config BR2_PACKAGE_FFMPEG_ARCH_SUPPORTS
	def_bool y
menuconfig BR2_PACKAGE_FFMPEG
	bool "ffmpeg"
	depends on BR2_PACKAGE_FFMPEG_ARCH_SUPPORTS
	depends on BR2_TOOLCHAIN_HAS_THREADS
if BR2_PACKAGE_FFMPEG
config BR2_PACKAGE_FFMPEG_FFMPEG
	bool "ffmpeg command line"
	default y
config BR2_PACKAGE_FFMPEG_SWSCALE
	bool "libswscale"
endif
menu "External options"
source "$BR2_EXTERNAL_VIGIL_PATH/Config.in"
endmenu
'

kconfig() {
	tree=$(cd "${1:-buildroot}" && pwd)
	[ -f "$tree/Config.in" ] || die "no Config.in in $tree"
	work=$(mktemp -d)
	printf '%s' "$KCONFIG_STUB" > "$work/Kconfig"
	# The defconfig's lines for the tree's own symbols: they must exist and take effect
	grep -E '^(# )?BR2_PACKAGE_VIGIL_' "$DEFCONFIG" > "$work/fragment" || true
	rc=0
	BR2_EXTERNAL_VIGIL_PATH=$tree "$PYTHON" - "$work/Kconfig" "$work/fragment" <<'EOF_PY' || rc=$?
import os, sys
os.environ["CONFIG_"] = ""            # Buildroot symbols carry no CONFIG_ prefix
os.environ["KCONFIG_WARN_UNDEF"] = "y"  # a reference to an undeclared symbol is reported
import kconfiglib

stub, fragment = sys.argv[1], sys.argv[2]
try:
    kconf = kconfiglib.Kconfig(stub, warn_to_stderr=False)
except kconfiglib.KconfigError as e:
    print("kconfig: parse error: %s" % e, file=sys.stderr)
    sys.exit(1)
kconf.warn_assign_undef = True
kconf.load_config(fragment, replace=False)
problems = list(kconf.warnings)
own = sorted(s.name for s in kconf.unique_defined_syms
             if os.path.abspath(s.nodes[0].filename) != os.path.abspath(stub))
for name in own:
    if not name.startswith("BR2_PACKAGE_VIGIL_"):
        problems.append("%s: the tree's symbols are named BR2_PACKAGE_VIGIL_*" % name)
if "BR2_PACKAGE_VIGIL_AGENT" not in own:
    problems.append("BR2_PACKAGE_VIGIL_AGENT is not declared")
elif kconf.syms["BR2_PACKAGE_VIGIL_AGENT"].str_value != "y":
    problems.append("the defconfig does not enable BR2_PACKAGE_VIGIL_AGENT")
else:
    # What the agent needs at run time must follow from enabling it
    for dep in ("BR2_PACKAGE_FFMPEG", "BR2_PACKAGE_FFMPEG_FFMPEG", "BR2_PACKAGE_FFMPEG_SWSCALE"):
        if kconf.syms[dep].str_value != "y":
            problems.append("vigil-agent enabled but %s is not" % dep)
for p in problems:
    print("kconfig: %s" % p, file=sys.stderr)
if problems:
    sys.exit(1)
print("kconfig: ok (%s)" % ", ".join(own))
EOF_PY
	rm -rf "$work"
	return "$rc"
}

# --- shellcheck ---------------------------------------------------------------
# Every file under buildroot/, board/ and scripts/ that is a shell script: a .sh
# name, a sh/bash shebang, or a "shellcheck shell=" directive on its first line.
# In a git checkout, the files git knows (committed or staged), as CI sees them:
# someone's uncommitted draft does not fail everyone's tests.
tree_files() {
	if git rev-parse --git-dir >/dev/null 2>&1; then
		git ls-files --cached -- buildroot board scripts
	else
		find buildroot board scripts -type f
	fi
}

shell_scripts() {
	tree_files | sort | while read -r f; do
		[ -f "$f" ] || continue
		first=$(head -n 1 "$f")
		case "$f:$first" in
			*.sh:* | *:"#!/bin/sh"* | *:"#!/bin/bash"* | *:"#!/usr/bin/env sh"* | *:"#!/usr/bin/env bash"* | *:"# shellcheck shell="*)
				echo "$f"
				;;
		esac
	done
}

shellcheck_all() {
	files=$(shell_scripts)
	[ -n "$files" ] || die "no shell scripts found"
	# shellcheck disable=SC2086 # one file per word; the paths have no spaces
	shellcheck --external-sources $files
	echo "shellcheck: ok ($(echo "$files" | wc -l) scripts)"
}

# --- genimage -----------------------------------------------------------------
# Runs the board's real genimage configs on small dummy inputs made with the real
# tools (FAT by genimage's mkdosfs/mcopy, squashfs, ext4), then checks the table.
genimage_check() {
	if [ -n "${1:-}" ]; then
		out=$1
		rm -rf "$out"
		mkdir -p "$out"
	else
		out=$(mktemp -d)
		trap 'rm -rf "$out"' EXIT
	fi
	in=$out/input
	mkdir -p "$in/rpi-firmware/overlays" "$out/root" "$out/rootfs/etc"
	# What Buildroot leaves in BINARIES_DIR: firmware, overlays, DTBs, kernel, rootfs
	for f in start4.elf fixup4.dat; do
		echo "dummy $f" > "$in/rpi-firmware/$f"
	done
	echo "dummy overlay" > "$in/rpi-firmware/overlays/disable-bt.dtbo"
	cp "$BOARD/config.txt" "$BOARD/autoboot.txt" "$BOARD/cmdline-a.txt" "$BOARD/cmdline-b.txt" "$in/rpi-firmware/"
	for dtb in bcm2711-rpi-4-b bcm2711-rpi-400 bcm2711-rpi-cm4 bcm2711-rpi-cm4s; do
		echo "dummy $dtb" > "$in/$dtb.dtb"
	done
	echo "dummy kernel" > "$in/Image"
	echo "vigil dummy rootfs" > "$out/rootfs/etc/issue"
	mksquashfs "$out/rootfs" "$in/rootfs.squashfs" -comp zstd -noappend -all-root -quiet -no-progress >/dev/null

	for cfg in genimage-boot.cfg genimage.cfg; do
		rm -rf "$out/tmp"
		if ! genimage --config "$BOARD/$cfg" --rootpath "$out/root" --tmppath "$out/tmp" \
			--inputpath "$in" --outputpath "$out" > "$out/$cfg.log" 2>&1; then
			cat "$out/$cfg.log" >&2
			die "genimage failed on $BOARD/$cfg"
		fi
		# genimage-boot.cfg's output is genimage.cfg's input
		[ "$cfg" = genimage-boot.cfg ] && cp "$out/bootA.vfat" "$in/bootA.vfat"
	done

	sfdisk --json "$out/sdcard.img" > "$out/sdcard.json"
	"$PYTHON" - "$out/sdcard.json" <<'EOF_PY'
import json, sys
MIB4 = 4 * 1024 * 1024 // 512          # sectors
table = json.load(open(sys.argv[1]))["partitiontable"]
parts = {int(p["node"].rsplit("img", 1)[1]): p for p in table["partitions"]}
want = {1: "c", 2: "c", 3: "c", 4: "extended", 5: "83", 6: "83", 7: "83"}
problems = []
if table["label"] != "dos":
    problems.append("label %s, not dos (MBR)" % table["label"])
if sorted(parts) != sorted(want):
    problems.append("partitions %s, expected %s" % (sorted(parts), sorted(want)))
for n, t in want.items():
    p = parts.get(n)
    if p is None:
        continue
    ok = p["type"] in ("5", "f", "85") if t == "extended" else p["type"] == t
    if not ok:
        problems.append("p%d has type %s, expected %s" % (n, p["type"], t))
    if p["start"] % MIB4:
        problems.append("p%d starts at sector %d, not 4 MiB aligned" % (n, p["start"]))
order = [parts[n]["start"] for n in (1, 2, 3, 5, 6, 7) if n in parts]
if order != sorted(order):
    problems.append("partitions are not in disk order: %s" % order)
if 4 in parts and 7 in parts:
    ext, data = parts[4], parts[7]
    if data["start"] + data["size"] > ext["start"] + ext["size"]:
        problems.append("p7 overflows the extended partition")
for p in problems:
    print("genimage: %s" % p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF_PY
	echo "genimage: ok ($out/sdcard.img: p1 autoboot, p2/p3 boot A/B, p5/p6 rootfs A/B, p7 data)"
}

# --- buildroot (dev loop, not CI) ---------------------------------------------
buildroot_check() {
	br=$(cd "${1:?usage: firmware-check.sh buildroot BUILDROOT_DIR}" && pwd)
	work=$(mktemp -d)
	make -s -C "$br" BR2_EXTERNAL="$top/buildroot" O="$work/out" vigil_rpi4_64_defconfig >/dev/null
	make -s -C "$br" O="$work/out" savedefconfig BR2_DEFCONFIG="$work/saved" >/dev/null
	if ! cmp -s "$work/saved" "$DEFCONFIG"; then
		diff -u "$DEFCONFIG" "$work/saved" >&2 || true
		rm -rf "$work"
		die "$DEFCONFIG is not what savedefconfig writes (diff above)"
	fi
	rm -rf "$work"
	echo "buildroot: $DEFCONFIG round-trips through savedefconfig"
	# check-package needs python3-magic and flake8 (Debian)
	# shellcheck disable=SC2046 # one file per word
	"$PYTHON" "$br/utils/check-package" -b $(find buildroot -type f) board/common/rootfs-overlay/etc/init.d/*
}

case "${1:-all}" in
	deps) deps ;;
	kconfig) kconfig "${2:-}" ;;
	shellcheck) shellcheck_all ;;
	shell-scripts) shell_scripts ;;
	genimage) genimage_check "${2:-}" ;;
	buildroot) buildroot_check "${2:-}" ;;
	all)
		deps
		kconfig
		shellcheck_all
		genimage_check
		;;
	*) die "unknown check '$1' (deps, kconfig, shellcheck, shell-scripts, genimage, buildroot, all)" ;;
esac
