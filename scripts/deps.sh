#!/bin/sh
# Makes sure the Debian packages Vigil needs are present: ffmpeg (capture),
# gst-rtsp-server with its Python bindings (the RTSP test camera), and the ONVIF peers the
# camera simulator is proven against (test/onvif-sim): onvif-util (package onvif-tools, an
# independent ONVIF client) and wsdd (a foreign WS-Discovery responder), and rauc with
# squashfs-tools and openssl (signed firmware bundles), Chromium (the status page's browser
# test drives it with playwright-core, which never downloads a browser of its own), and
# PostgreSQL (the cloud's tests start their own throwaway server; no service is started). Installs
# them when run as root, otherwise stops with the list of what is missing. Then the firmware
# tools (scripts/firmware-check.sh deps).
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
command -v onvif-util >/dev/null 2>&1 || missing="$missing onvif-tools"
command -v ip >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
if ! command -v wsdd >/dev/null 2>&1 && ! PATH="$PATH:/usr/sbin" command -v wsdd >/dev/null 2>&1; then
  missing="$missing wsdd"
  # wsdd's package enables its service, which would announce this host on the real LAN: mask
  # it first (install_missing also keeps services from starting while it installs).
  [ "$(id -u)" -ne 0 ] || mask_service wsdd.service
fi
# Signed firmware bundles: the cloud checks a release's signature with rauc (and its tests
# build real bundles), so they must not depend on which test happened to install it first
command -v rauc >/dev/null 2>&1 || missing="$missing rauc"
command -v mksquashfs >/dev/null 2>&1 || missing="$missing squashfs-tools"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
# test/e2e/status-page.test.ts launches exactly this path
[ -x /usr/bin/chromium ] || missing="$missing chromium"
# test/helpers/postgres.ts runs initdb and pg_ctl from here
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
# The load balancer in front of several cloud replicas (test/e2e/replicas.test.ts)
[ -x /usr/sbin/haproxy ] || missing="$missing haproxy"

# shellcheck disable=SC2086 # the list is meant to split into words
install_missing setup $missing

# The firmware's tools (shellcheck, genimage, mtools, BusyBox, wpa_passphrase...): the firmware
# tests use them, and must find them installed before tap starts, not install them in parallel
sh "$(dirname "$0")/firmware-check.sh" deps
