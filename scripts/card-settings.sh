#!/bin/sh
# card-settings.sh: vigil.txt, the settings a card carries to its device (docs/firmware.md,
# "Card settings (vigil.txt)"), for `make flash` and `make card-file`.
#
#   card-settings.sh make OUT       check the settings below and write the file to OUT; exit 1
#                                   with every problem named, before anything is written
#   card-settings.sh put FILE DISK  copy FILE as vigil.txt onto the first partition of DISK
#                                   (a card, e.g. /dev/sdb, or a card image file): the FAT
#                                   filesystem labelled AUTOBOOT, found from DISK's partition
#                                   table; written with mtools, nothing is mounted
#   card-settings.sh file DISK      both: the settings below onto DISK (`make card-file`: a card
#                                   image file, or a card that is already flashed)
#   card-settings.sh given          exit 0 when any setting below is set
#
# Settings (environment; make passes its command-line variables):
#   CLOUD          the cloud's URL, http:// or https://            -> CLOUD_URL
#   CLAIM          the claim code from the dashboard               -> CLAIM_CODE
#   SETUP_PIN      8 digits for the device's local page; made up from /dev/urandom when not
#                  given, and printed: write it on the device's label
#   WIFI_SSID, WIFI_PASSWORD (8-63 characters, or empty: an open network), WIFI_COUNTRY (two
#   letters, needed with WIFI_SSID), ADDRESS (a.b.c.d/prefix), GATEWAY, DNS (one or more
#   addresses, separated by spaces or commas; GATEWAY and DNS are needed with ADDRESS)
# The Wi-Fi values are written between double quotes, so spaces at either end stay.
set -eu

die() {
	echo "card-settings: $*" >&2
	exit 1
}

problems=""
problem() {
	problems="$problems
  - $*"
}

bytes() {
	printf '%s' "$1" | wc -c | tr -d ' '
}

is_ipv4() {
	case $1 in
		"" | *[!0-9.]* | *..* | .* | *.) return 1 ;;
	esac
	old=$IFS
	IFS=.
	# shellcheck disable=SC2086 # split on the dots; only digits and dots remain
	set -- $1
	IFS=$old
	[ $# -eq 4 ] || return 1
	for octet in "$@"; do
		[ ${#octet} -le 3 ] && [ "$octet" -le 255 ] || return 1
	done
}

is_cidr() {
	case $1 in
		*/*) ;;
		*) return 1 ;;
	esac
	prefix=${1#*/}
	case $prefix in
		"" | *[!0-9]* | ???*) return 1 ;;
	esac
	[ "$prefix" -ge 1 ] && [ "$prefix" -le 32 ] && is_ipv4 "${1%/*}"
}

# no_control NAME VALUE: a value must be one printable line
no_control() {
	case $2 in
		*[[:cntrl:]]*) problem "$1 holds a control character (a line break, a tab...)" ;;
	esac
}

# An 8-digit PIN from /dev/urandom, uniform (4,200,000,000 is a multiple of 10^8)
random_pin() {
	while :; do
		n=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
		if [ "$n" -lt 4200000000 ]; then
			printf '%08d\n' $((n % 100000000))
			return 0
		fi
	done
}

given() {
	for v in "${CLOUD:-}" "${CLAIM:-}" "${SETUP_PIN:-}" "${WIFI_SSID:-}" "${WIFI_PASSWORD:-}" \
		"${WIFI_COUNTRY:-}" "${ADDRESS:-}" "${GATEWAY:-}" "${DNS:-}"; do
		[ -z "$v" ] || return 0
	done
	return 1
}

cmd_make() {
	out=${1:?usage: card-settings.sh make OUT}
	cloud=${CLOUD:-}
	claim=${CLAIM:-}
	pin=${SETUP_PIN:-}
	ssid=${WIFI_SSID:-}
	password=${WIFI_PASSWORD:-}
	country=${WIFI_COUNTRY:-}
	address=${ADDRESS:-}
	gateway=${GATEWAY:-}
	dns=${DNS:-}
	given || die "no settings given (CLOUD=, CLAIM=, WIFI_SSID=...: docs/firmware.md, \"Card settings (vigil.txt)\")"

	for pair in "CLOUD=$cloud" "CLAIM=$claim" "SETUP_PIN=$pin" "WIFI_SSID=$ssid" "WIFI_PASSWORD=$password" \
		"WIFI_COUNTRY=$country" "ADDRESS=$address" "GATEWAY=$gateway" "DNS=$dns"; do
		no_control "${pair%%=*}" "${pair#*=}"
	done
	if [ -n "$cloud" ]; then
		printf '%s\n' "$cloud" | grep -Eq '^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[^[:space:]]*)?$' ||
			problem "CLOUD '$cloud' is not an http:// or https:// URL (like https://cloud.example.com)"
	fi
	if [ -n "$claim" ]; then
		printf '%s\n' "$claim" | grep -Eq '^[A-Za-z0-9 -]{4,64}$' ||
			problem "CLAIM '$claim' is not a claim code as the dashboard prints it (4-64 letters, digits, '-')"
		[ -n "$cloud" ] || problem "CLAIM needs CLOUD: the image names no cloud of its own"
	fi
	if [ -n "$pin" ]; then
		case $pin in
			[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]) ;;
			*) problem "SETUP_PIN '$pin' is not 8 digits" ;;
		esac
	fi
	if [ -n "$ssid" ]; then
		n=$(bytes "$ssid")
		[ "$n" -le 32 ] || problem "WIFI_SSID is $n bytes; Wi-Fi allows at most 32"
		if [ -n "$password" ]; then
			n=$(bytes "$password")
			if [ "$n" -lt 8 ] || [ "$n" -gt 63 ]; then
				problem "WIFI_PASSWORD is $n characters; WPA needs 8 to 63 (or WIFI_PASSWORD= for an open network)"
			fi
		fi
		case $country in
			[A-Za-z][A-Za-z]) country=$(printf '%s' "$country" | LC_ALL=C tr '[:lower:]' '[:upper:]') ;;
			"") problem "WIFI_SSID needs WIFI_COUNTRY, the two-letter country code of the site (GB, DE, US...): it sets the radio's allowed channels" ;;
			*) problem "WIFI_COUNTRY '$country' is not a two-letter country code (GB, DE, US...)" ;;
		esac
	elif [ -n "$password" ] || [ -n "$country" ]; then
		problem "WIFI_PASSWORD and WIFI_COUNTRY go with WIFI_SSID, which is not set"
	fi
	if [ -n "$address" ]; then
		is_cidr "$address" || problem "ADDRESS '$address' is not an IPv4 address with a prefix length (like 192.168.1.50/24)"
		if [ -z "$gateway" ]; then
			problem "ADDRESS needs GATEWAY (the router's address)"
		elif ! is_ipv4 "$gateway"; then
			problem "GATEWAY '$gateway' is not an IPv4 address"
		fi
		[ -n "$dns" ] || problem "ADDRESS needs DNS (one or more name servers, e.g. DNS=\"192.168.1.1 9.9.9.9\")"
		for s in $(printf '%s' "$dns" | tr ',' ' '); do
			is_ipv4 "$s" || problem "DNS server '$s' is not an IPv4 address"
		done
	elif [ -n "$gateway" ] || [ -n "$dns" ]; then
		problem "GATEWAY and DNS go with ADDRESS, which is not set (without it the device uses DHCP)"
	fi
	[ -z "$problems" ] || die "the card settings are not right; nothing was written:$problems"

	generated=0
	if [ -z "$pin" ]; then
		pin=$(random_pin)
		generated=1
	fi
	{
		# printf, never echo, for values: dash's echo would turn a \r in a password into a CR
		echo "# Vigil device settings: NAME=value, one per line (docs/firmware.md, \"Card settings (vigil.txt)\")."
		echo "# The device erases the CLAIM_CODE line once it is claimed."
		[ -z "$cloud" ] || printf 'CLOUD_URL=%s\n' "$cloud"
		[ -z "$claim" ] || printf 'CLAIM_CODE=%s\n' "$claim"
		printf 'SETUP_PIN=%s\n' "$pin"
		if [ -n "$ssid" ]; then
			printf 'WIFI_SSID="%s"\n' "$ssid"
			printf 'WIFI_PASSWORD="%s"\n' "$password"
			printf 'WIFI_COUNTRY=%s\n' "$country"
		fi
		if [ -n "$address" ]; then
			printf 'ADDRESS=%s\n' "$address"
			printf 'GATEWAY=%s\n' "$gateway"
			printf 'DNS=%s\n' "$(printf '%s' "$dns" | tr ',' ' ' | tr -s ' ' | sed 's/^ //; s/ $//')"
		fi
	} >"$out"
	if [ "$generated" = 1 ]; then
		echo "card-settings: SETUP_PIN=$pin (made up: write it on the device label; it opens the device's local setup page)"
	else
		echo "card-settings: SETUP_PIN=$pin (as given)"
	fi
}

# p1_offset DISK: the byte offset of DISK's first partition
p1_offset() {
	dump=$(sfdisk --dump "$1" 2>/dev/null) || die "$1 has no partition table sfdisk can read: is it a Vigil card or card image?"
	sector=$(printf '%s\n' "$dump" | sed -n 's/^sector-size: *\([0-9]*\)$/\1/p')
	start=$(printf '%s\n' "$dump" | sed -n 's/^[^:]* : start= *\([0-9]*\),.*/\1/p' | head -n 1)
	[ -n "$start" ] || die "$1 has no partitions"
	echo $((start * ${sector:-512}))
}

# not_mounted DISK: a card whose partitions a desktop mounted (after a re-insert, say) is not
# written behind the mounting kernel's back
not_mounted() {
	[ -b "$1" ] || return 0
	dev=$(readlink -f "$1")
	while read -r src mnt _; do
		case $src in
			"$dev"*) die "$src is mounted on $mnt: unmount it first" ;;
		esac
	done </proc/mounts
}

cmd_put() {
	file=${1:?usage: card-settings.sh put FILE DISK}
	disk=${2:?usage: card-settings.sh put FILE DISK}
	[ -f "$file" ] || die "no file $file"
	[ -e "$disk" ] || die "$disk does not exist"
	not_mounted "$disk"
	command -v mcopy >/dev/null 2>&1 || die "mcopy is missing (Debian package mtools)"
	offset=$(p1_offset "$disk")
	fat="$disk@@$offset"
	# mtools checks a filesystem's geometry against the BIOS's idea of a disk: not ours
	export MTOOLS_SKIP_CHECK=1
	label=$(mlabel -s -i "$fat" :: 2>/dev/null | sed -n 's/^ *Volume label is \([^ ]*\).*/\1/p')
	[ "$label" = AUTOBOOT ] ||
		die "the first partition of $disk is not the card's AUTOBOOT filesystem (label '${label:-none}'): not a Vigil card?"
	mcopy -o -i "$fat" "$file" ::vigil.txt || die "mcopy could not write vigil.txt onto $disk"
	mtype -i "$fat" ::vigil.txt | cmp -s - "$file" || die "vigil.txt on $disk does not read back as written"
	sync
	echo "card-settings: vigil.txt written to the first partition of $disk"
}

cmd_file() {
	disk=${1:?usage: card-settings.sh file DISK}
	[ -e "$disk" ] || die "$disk does not exist"
	not_mounted "$disk"
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	cmd_make "$tmp"
	cmd_put "$tmp" "$disk"
}

case ${1:-} in
	make) cmd_make "${2:-}" ;;
	file) cmd_file "${2:-}" ;;
	put) cmd_put "${2:-}" "${3:-}" ;;
	given) given ;;
	*) die "usage: card-settings.sh make OUT | put FILE DISK | file DISK | given" ;;
esac
