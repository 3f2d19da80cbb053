#!/bin/sh
# run.sh DISK: boots a QEMU test image (board/qemu/build-image.sh) on QEMU's aarch64 "virt"
# machine, playing the Raspberry Pi firmware's part first:
#   1. autoboot.txt on p1 names the boot partition ([all] boot_partition=, or the [tryboot]
#      one when VIGIL_QEMU_TRYBOOT=1, as after `vigil-reboot tryboot`);
#   2. that partition's config.txt names the kernel (kernel=) and, if any, the initramfs;
#      QEMU's boot slots also hold initrd.gz (the module-loading stand-in), used when present;
#   3. that partition's cmdline.txt is the kernel command line, with the SD card's
#      /dev/mmcblk0pN as the virtio disk's /dev/vdaN.
# The serial console (ttyAMA0, as on the Pi) is this process's stdin/stdout. QEMU is exec'd,
# so this process's pid is QEMU's: SIGKILL it to cut the power. A reboot or power-off in the
# guest ends QEMU (-no-reboot); run this again to power on.
#
# Environment (all optional):
#   VIGIL_QEMU_TRYBOOT=1         boot autoboot.txt's [tryboot] partition, with vigil.tryboot=1 on
#                                the command line (the firmware's device-tree flag on a Pi)
#   VIGIL_QEMU_APPEND            more kernel parameters (after cmdline.txt's)
#   VIGIL_QEMU_FORWARD           "ADDR:PORT=HOSTPORT ...": guest TCP connections to ADDR:PORT
#                                reach 127.0.0.1:HOSTPORT on the host. Nothing else leaves the
#                                guest (user networking with restrict=on): no DNS, no NTP.
#   VIGIL_QEMU_CONTROL           a Unix socket path: QEMU listens there, the guest reads it
#                                as /dev/hvc0 (the test image's control channel)
#   VIGIL_QEMU_MEM (1024), VIGIL_QEMU_SMP (2)
set -eu

die() {
	echo "run.sh: $*" >&2
	exit 1
}

disk=${1:?usage: run.sh DISK}
[ -f "$disk" ] || die "$disk: no such image"
PATH=$PATH:/usr/sbin:/sbin
fw=$(mktemp -d "${TMPDIR:-/tmp}/vigil-qemu-fw.XXXXXX")
trap 'rm -rf "$fw"' EXIT

# start sector of partition N
start_of() {
	sfdisk -d "$disk" | awk -v n="$1" '/ : start=/ {
		match($1, /[0-9]+$/); if (substr($1, RSTART) != n) next
		s = $0; sub(/.*start= */, "", s); sub(/,.*/, "", s); print s }'
}
fat() { # fat PART FILE: print FILE from the FAT filesystem of partition PART
	off=$(start_of "$1")
	[ -n "$off" ] || die "$disk has no partition $1"
	MTOOLS_SKIP_CHECK=1 mtype -i "$disk@@$((off * 512))" "::$2" 2>/dev/null | tr -d '\r'
}
fat_get() { # fat_get PART FILE DEST
	off=$(start_of "$1")
	MTOOLS_SKIP_CHECK=1 mcopy -n -i "$disk@@$((off * 512))" "::$2" "$3" 2>/dev/null
}

# 1. autoboot.txt: [all] boot_partition, or [tryboot]'s in a trial boot
section=all
[ "${VIGIL_QEMU_TRYBOOT:-0}" = 1 ] && section=tryboot
autoboot=$(fat 1 autoboot.txt) || die "no autoboot.txt on p1"
part=$(echo "$autoboot" | awk -v want="$section" '
	/^\[/ { s = $0; gsub(/[][]/, "", s); next }
	/^boot_partition=/ && (s == want || (s == "all" && !found)) { v = substr($0, 16); if (s == want) found = 1 }
	END { print v }')
[ -n "$part" ] || die "autoboot.txt names no boot_partition"

# 2. config.txt: the kernel and the initramfs
config=$(fat "$part" config.txt) || die "no config.txt on p$part"
kernel=$(echo "$config" | sed -n 's/^kernel=//p' | tail -n 1)
kernel=${kernel:-kernel8.img}
initrd=$(echo "$config" | awk '$1 == "initramfs" { f = $2 } END { print f }')
fat_get "$part" "$kernel" "$fw/kernel" || die "p$part has no $kernel"
if [ -n "$initrd" ]; then
	fat_get "$part" "$initrd" "$fw/initrd" || die "p$part has no $initrd"
elif fat_get "$part" initrd.gz "$fw/initrd"; then
	initrd=initrd.gz
fi

# 3. cmdline.txt, the SD card's partitions as the virtio disk's
cmdline=$(fat "$part" cmdline.txt | tr '\n' ' ' | sed 's#/dev/mmcblk0p#/dev/vda#g; s/  */ /g; s/ $//')
[ -n "$cmdline" ] || die "p$part has no cmdline.txt"
# A trial boot: the Pi firmware says so in the device tree (chosen/bootloader/tryboot), which
# QEMU's virt machine has not; vigil.tryboot=1 is lib.sh's stand-in for it
[ "$section" = tryboot ] && cmdline="$cmdline vigil.tryboot=1"
cmdline="$cmdline${VIGIL_QEMU_APPEND:+ $VIGIL_QEMU_APPEND}"
echo "run.sh: firmware: boot partition $part ($section), kernel=$kernel initrd=${initrd:-none}" >&2
echo "run.sh: cmdline: $cmdline" >&2

net="user,id=net0,restrict=on"
for f in ${VIGIL_QEMU_FORWARD:-}; do
	guest=${f%%=*}
	host=${f#*=}
	# One nc per connection; -N passes the guest's close on to the server
	net="$net,guestfwd=tcp:$guest-cmd:nc -N 127.0.0.1 $host"
done

# QEMU reads the kernel and initrd through these descriptors: nothing is left behind
exec 3<"$fw/kernel"
[ -n "$initrd" ] && exec 4<"$fw/initrd"
rm -rf "$fw"
trap - EXIT

set -- -M virt -cpu cortex-a72 -smp "${VIGIL_QEMU_SMP:-2}" -m "${VIGIL_QEMU_MEM:-1024}" \
	-accel tcg -display none -monitor none -no-reboot \
	-kernel /proc/self/fd/3 -append "$cmdline" \
	-drive "file=$disk,format=raw,if=none,id=sd" -device virtio-blk-device,drive=sd \
	-netdev "$net" -device virtio-net-device,netdev=net0 \
	-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-device,rng=rng0 \
	-device i6300esb
[ -n "$initrd" ] && set -- "$@" -initrd /proc/self/fd/4
if [ -n "${VIGIL_QEMU_CONTROL:-}" ]; then
	set -- "$@" -device virtio-serial-device \
		-chardev "socket,id=control,path=$VIGIL_QEMU_CONTROL,server=on,wait=off" \
		-device virtconsole,chardev=control
fi
if [ -t 0 ]; then
	# A person at a terminal: Ctrl-A X quits
	set -- "$@" -serial mon:stdio
else
	set -- "$@" -serial stdio
fi
exec qemu-system-aarch64 "$@"
