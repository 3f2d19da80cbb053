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
version=$(git -C "$TOP_DIR" describe --always --dirty 2>/dev/null || echo unknown)
mkdir -p "$TARGET_DIR/etc/vigil"
cat > "$TARGET_DIR/etc/vigil/release" <<EOF_RELEASE
VIGIL_FIRMWARE_VERSION=$version
VIGIL_FIRMWARE_BOARD=$(basename "$BOARD_DIR")
VIGIL_FIRMWARE_BUILD_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)}
EOF_RELEASE
