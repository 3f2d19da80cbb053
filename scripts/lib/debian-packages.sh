# shellcheck shell=sh
# Sourced by the project's dependency scripts (scripts/*deps*.sh, firmware-check.sh) once they
# know which Debian packages are missing.
#
# install_missing WHO PACKAGE...: installs the packages when run as root; otherwise stops with
# the list and the command to run. Nothing to do when no package is named.
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
	# Other jobs on the same machine may hold the dpkg lock for a while: wait for it.
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
	# shellcheck disable=SC2086 # the list is meant to split into words
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $list >/dev/null
}
