#!/bin/sh
# The keys that sign OTA bundles (docs/firmware.md, "OTA bundles").
#
#   sh scripts/ota-keys.sh [DIR]    make a development CA and signing key in DIR (default
#                                   .keys/dev/, git-ignored) unless they exist; print their paths
#
# Keys never live in the repository. A release is signed with real ones named by
#   VIGIL_SIGNING_KEY    PEM private key (or a PKCS#11 URI rauc accepts)
#   VIGIL_SIGNING_CERT   PEM certificate of that key, issued by the keyring's CA
#   VIGIL_KEYRING        PEM CA certificate(s) the devices trust (/etc/rauc/keyring.pem)
# When all three are set this script only checks that the files exist and prints them.
#
# Output (stdout), one per line, for scripts to read:
#   VIGIL_SIGNING_KEY=... VIGIL_SIGNING_CERT=... VIGIL_KEYRING=...
#
# The development CA is only for this machine, tests and QEMU: a device whose keyring holds it
# installs anything signed on any developer's machine that ran this.
set -eu
# shellcheck source=/dev/null # scripts/lib/debian-packages.sh, checked on its own
. "$(dirname "$0")/lib/debian-packages.sh"

top=$(cd "$(dirname "$0")/.." && pwd)

die() {
	echo "ota-keys: $*" >&2
	exit 1
}

if [ -n "${VIGIL_SIGNING_KEY:-}${VIGIL_SIGNING_CERT:-}${VIGIL_KEYRING:-}" ]; then
	if [ -z "${VIGIL_SIGNING_KEY:-}" ] || [ -z "${VIGIL_SIGNING_CERT:-}" ] || [ -z "${VIGIL_KEYRING:-}" ]; then
		die "set all of VIGIL_SIGNING_KEY, VIGIL_SIGNING_CERT and VIGIL_KEYRING, or none (for the dev keys)"
	fi
	case $VIGIL_SIGNING_KEY in
		pkcs11:*) ;;
		*) [ -r "$VIGIL_SIGNING_KEY" ] || die "VIGIL_SIGNING_KEY: cannot read $VIGIL_SIGNING_KEY" ;;
	esac
	[ -r "$VIGIL_SIGNING_CERT" ] || die "VIGIL_SIGNING_CERT: cannot read $VIGIL_SIGNING_CERT"
	[ -r "$VIGIL_KEYRING" ] || die "VIGIL_KEYRING: cannot read $VIGIL_KEYRING"
	printf 'VIGIL_SIGNING_KEY=%s\nVIGIL_SIGNING_CERT=%s\nVIGIL_KEYRING=%s\n' \
		"$VIGIL_SIGNING_KEY" "$VIGIL_SIGNING_CERT" "$VIGIL_KEYRING"
	exit 0
fi

command -v openssl >/dev/null 2>&1 || install_missing ota-keys openssl

dir=${1:-$top/.keys/dev}
ca_key=$dir/ca.key.pem
ca_cert=$dir/ca.cert.pem
key=$dir/signing.key.pem
cert=$dir/signing.cert.pem

if [ ! -s "$ca_cert" ] || [ ! -s "$key" ] || [ ! -s "$cert" ]; then
	mkdir -p "$dir"
	chmod 700 "$dir"
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	# The extensions RAUC's default check (S/MIME signing purpose) accepts: a CA that may
	# only sign certificates, a leaf that may only sign (no extendedKeyUsage: it would
	# narrow the purpose).
	cat >"$work/ext.cnf" <<'CNF'
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
	host=$(hostname 2>/dev/null || echo unknown)
	# umask: the private keys are created readable by their owner only
	(
		umask 077
		openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key.pem"
		openssl ecparam -name prime256v1 -genkey -noout -out "$work/signing.key.pem"
	)
	openssl req -new -x509 -sha256 -days 3650 -key "$work/ca.key.pem" \
		-subj "/O=Vigil development/CN=Vigil dev CA ($host)" \
		-config "$work/ext.cnf" -extensions ca -out "$work/ca.cert.pem" 2>/dev/null
	openssl req -new -sha256 -key "$work/signing.key.pem" \
		-subj "/O=Vigil development/CN=Vigil dev bundle signing ($host)" -out "$work/signing.csr" 2>/dev/null
	openssl x509 -req -sha256 -days 1825 -in "$work/signing.csr" \
		-CA "$work/ca.cert.pem" -CAkey "$work/ca.key.pem" -set_serial "0x$(openssl rand -hex 8)" \
		-extfile "$work/ext.cnf" -extensions leaf -out "$work/signing.cert.pem" 2>/dev/null
	openssl verify -CAfile "$work/ca.cert.pem" "$work/signing.cert.pem" >/dev/null ||
		die "the new signing certificate does not verify against the new CA"
	mv "$work/ca.key.pem" "$ca_key"
	mv "$work/signing.key.pem" "$key"
	mv "$work/signing.cert.pem" "$cert"
	# The CA certificate last: its presence is what says the set is complete
	mv "$work/ca.cert.pem" "$ca_cert"
	echo "ota-keys: made a development CA and signing key in $dir" >&2
fi

printf 'VIGIL_SIGNING_KEY=%s\nVIGIL_SIGNING_CERT=%s\nVIGIL_KEYRING=%s\n' "$key" "$cert" "$ca_cert"
