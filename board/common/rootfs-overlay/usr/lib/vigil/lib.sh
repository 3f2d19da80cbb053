# shellcheck shell=sh disable=SC2034 # the settings are used by the scripts that source this
# Shared by the Vigil init scripts and /usr/sbin/vigil-*: settings, kernel
# parameters, logging. Sourced, not run. POSIX sh (BusyBox ash on the device).
#
# Settings come from /etc/default/vigil; a vigil.<name>=<value> kernel parameter
# wins, so one image can serve the Pi (vigil.data=/dev/mmcblk0p7) and QEMU
# (vigil.data=/dev/vda7). VIGIL_CMDLINE_FILE and VIGIL_DEFAULTS_FILE exist for tests.

VIGIL_DATA_DEVICE=/dev/mmcblk0p7
VIGIL_DATA_MOUNT_OPTS=noatime,nodev,nosuid,noexec
VIGIL_DATA_GROW=1
VIGIL_WATCHDOG_DEVICE=/dev/watchdog
VIGIL_WATCHDOG_FEED_S=5
VIGIL_HEARTBEAT_FILE=/run/vigil/heartbeat
VIGIL_RESET_NOTE=/data/vigil/watchdog-reset
VIGIL_HEARTBEAT_STALE_S=180
VIGIL_TRIAL_GRACE_S=900
if [ -r "${VIGIL_DEFAULTS_FILE:-/etc/default/vigil}" ]; then
	# shellcheck source=/dev/null
	. "${VIGIL_DEFAULTS_FILE:-/etc/default/vigil}"
fi

# vigil_param NAME: the value of the kernel parameter NAME=value (empty if absent)
vigil_param() {
	vigil_cmdline=""
	read -r vigil_cmdline < "${VIGIL_CMDLINE_FILE:-/proc/cmdline}" || true
	for vigil_word in $vigil_cmdline; do
		case "$vigil_word" in
			"$1"=*) echo "${vigil_word#*=}"; return 0 ;;
		esac
	done
	return 0
}

vigil_data_device() {
	vigil_dev=$(vigil_param vigil.data)
	echo "${vigil_dev:-$VIGIL_DATA_DEVICE}"
}

# vigil_tryboot: true in a trial boot. The Pi firmware says so in the device
# tree (one 32-bit cell); vigil.tryboot=1 lets a test harness play the firmware.
vigil_tryboot() {
	[ "$(vigil_param vigil.tryboot)" = 1 ] && return 0
	vigil_flag=/proc/device-tree/chosen/bootloader/tryboot
	[ -r "$vigil_flag" ] || return 1
	[ "$(od -An -tx1 "$vigil_flag" | tr -d ' \n')" = 00000001 ]
}

# vigil_uptime: whole seconds since boot (monotonic: NTP steps do not move it)
vigil_uptime() {
	read -r vigil_up _ < /proc/uptime
	echo "${vigil_up%%.*}"
}

# vigil_log TAG MESSAGE...: to the console (stderr) and to syslog
vigil_log() {
	vigil_tag=$1
	shift
	echo "$vigil_tag: $*" >&2
	logger -t "$vigil_tag" -- "$*" 2>/dev/null || true
}
