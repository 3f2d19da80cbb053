#!/bin/sh
# Buildroot post-build script: $1 = TARGET_DIR. Policy lives in the rootfs overlay
# (board/common/rootfs-overlay); this only adds what a file in git cannot hold.
set -eu

TARGET_DIR=${1:?usage: post-build.sh TARGET_DIR}
BOARD_DIR=$(cd "$(dirname "$0")" && pwd)
TOP_DIR=$(cd "$BOARD_DIR/../.." && pwd)

# The mount point of the data partition (git keeps no empty directories)
mkdir -p "$TARGET_DIR/data"

# What this firmware is, for the agent's heartbeat and as the clock's floor at
# boot (S04vigil-clock): a Pi has no battery clock and starts in 1970 otherwise.
# VIGIL_VERSION overrides it (board/qemu/build-bundle.sh makes test releases with it).
version=${VIGIL_VERSION:-$(git -C "$TOP_DIR" describe --always --dirty 2>/dev/null || echo unknown)}
mkdir -p "$TARGET_DIR/etc/vigil"
cat > "$TARGET_DIR/etc/vigil/release" <<EOF_RELEASE
VIGIL_FIRMWARE_VERSION=$version
VIGIL_FIRMWARE_BOARD=$(basename "$BOARD_DIR")
VIGIL_FIRMWARE_BUILD_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)}
EOF_RELEASE

# RAUC (docs/firmware.md, "OTA bundles"): the slot layout, and the CA whose signatures it
# accepts. A release build names its keyring with VIGIL_KEYRING; without it the development
# CA of this machine (scripts/ota-keys.sh, made on demand in .keys/dev/) goes in, and the
# release file says so.
install -D -m 0644 "$TOP_DIR/board/common/rauc/system.conf" "$TARGET_DIR/etc/rauc/system.conf"
if [ -n "${VIGIL_KEYRING:-}" ]; then
	keyring=$VIGIL_KEYRING
	keyring_kind=release
else
	keyring=$(VIGIL_SIGNING_KEY='' VIGIL_SIGNING_CERT='' sh "$TOP_DIR/scripts/ota-keys.sh" | sed -n 's/^VIGIL_KEYRING=//p')
	keyring_kind=development
	echo "post-build: WARNING: no VIGIL_KEYRING, the image trusts the development CA $keyring" >&2
fi
[ -s "$keyring" ] || { echo "post-build: keyring $keyring is missing or empty" >&2; exit 1; }
grep -q -- '-----BEGIN CERTIFICATE-----' "$keyring" ||
	{ echo "post-build: keyring $keyring holds no PEM certificate" >&2; exit 1; }
install -D -m 0644 "$keyring" "$TARGET_DIR/etc/rauc/keyring.pem"
echo "VIGIL_FIRMWARE_KEYRING=$keyring_kind" >>"$TARGET_DIR/etc/vigil/release"
