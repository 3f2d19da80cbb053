# shellcheck shell=sh
# Sourced by the project's dependency scripts (scripts/*deps*.sh, firmware-check.sh) once they
# know which Debian packages are missing.
#
# install_missing WHO PACKAGE...: installs the packages when run as root; otherwise stops with
# the list and the command to run. Nothing to do when no package is named.
#
# No service starts while our packages install: a test dependency (wsdd, say) whose service
# came up on a CI host would talk on the real LAN. A policy-rc.d that answers 101 ("action
# forbidden") stands in place for the duration of apt-get and the host's own one, if any, is
# put back afterwards. A lock keeps two installs on one machine from swapping it back and forth.
POLICY_RC_D=/usr/sbin/policy-rc.d
VIGIL_APT_LOCK=/run/lock/vigil-debian-packages.lock

install_missing() {
	who=$1
	shift
	[ $# -eq 0 ] && return 0
	list=$(printf '%s\n' "$@" | sort -u | tr '\n' ' ')
	if [ "$(id -u)" -ne 0 ]; then
		echo "$who: missing Debian packages: $list" >&2
		echo "$who: install them with: sudo apt-get install --no-install-recommends $list" >&2
		exit 1
	fi
	echo "$who: installing Debian packages: $list" >&2
	mkdir -p "$(dirname "$VIGIL_APT_LOCK")"
	# A subshell, so the lock and the trap that restores policy-rc.d end with the install.
	(
		flock -w 900 9 || { echo "$who: $VIGIL_APT_LOCK is held by another install" >&2; exit 1; }
		saved=""
		if [ -e "$POLICY_RC_D" ]; then
			saved=$(mktemp)
			cp -p "$POLICY_RC_D" "$saved"
		fi
		# shellcheck disable=SC2064 # $saved is meant to expand now
		if [ -n "$saved" ]; then trap "mv -f '$saved' '$POLICY_RC_D'" EXIT; else trap "rm -f '$POLICY_RC_D'" EXIT; fi
		trap 'exit 130' INT TERM
		printf '#!/bin/sh\n# Written by Vigil'"'"'s scripts/lib/debian-packages.sh while it installs packages.\nexit 101\n' >"$POLICY_RC_D"
		chmod 755 "$POLICY_RC_D"
		# Other jobs on the same machine may hold the dpkg lock for a while: wait for it.
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
		# shellcheck disable=SC2086 # the list is meant to split into words
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $list >/dev/null
	) 9>"$VIGIL_APT_LOCK"
}

# mask_service UNIT...: masks systemd units (a link to /dev/null, what `systemctl mask` writes),
# so that a package which enables its unit on install (wsdd does) never starts it, now or at
# the next boot. Tests start such programs themselves, inside network namespaces. Nothing to
# do on a host without systemd; needs root.
mask_service() {
	[ -d /etc/systemd/system ] || return 0
	for unit in "$@"; do
		[ -e "/etc/systemd/system/$unit" ] || [ -L "/etc/systemd/system/$unit" ] || ln -s /dev/null "/etc/systemd/system/$unit"
	done
}
