#!/bin/sh
# Makes sure the Debian packages Vigil needs are present: ffmpeg (capture) and
# gst-rtsp-server with its Python bindings (the RTSP test camera). Installs them when run as
# root, otherwise stops with the list of what is missing.
set -eu
# shellcheck source=/dev/null # scripts/lib/debian-packages.sh, checked on its own
. "$(dirname "$0")/lib/debian-packages.sh"

missing=""
command -v ffmpeg >/dev/null 2>&1 || missing="$missing ffmpeg"
if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" >/dev/null 2>&1 \
   || ! command -v gst-inspect-1.0 >/dev/null 2>&1 || ! gst-inspect-1.0 x264enc >/dev/null 2>&1; then
  missing="$missing gstreamer1.0-tools gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 python3-gi"
  missing="$missing gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"
fi
command -v nc >/dev/null 2>&1 || missing="$missing netcat-openbsd"

# shellcheck disable=SC2086 # the list is meant to split into words
install_missing setup $missing
