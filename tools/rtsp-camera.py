#!/usr/bin/python3
"""Vigil's RTSP test camera: Debian's gst-rtsp-server serving a moving test pattern.

Run it with /usr/bin/python3 (GStreamer's Python bindings, `gi`, live there; a pyenv or venv
python usually lacks them).

    /usr/bin/python3 tools/rtsp-camera.py --port 0 --mount /cam1 --mount /cam2:smpte --size 1280x720

Prints exactly one line `ready rtsp://ADDR:PORT` once the server listens (with --port 0 the
kernel picks the port), then one line per signal handled (`stalled`, `resumed`, `frozen`,
`thawed`).

Signals:
  SIGUSR1  stall: every mount stops sending frames but keeps its TCP sessions open (a hung
           camera); a client that connects while stalled hangs in the RTSP handshake.
  SIGUSR2  resume.
  SIGHUP   freeze: every mount keeps sending frames, all of the same still picture (a stuck
           encoder, a covered lens); the cloud should call the camera frozen.
  SIGWINCH thaw: back to each mount's own pattern.
  SIGTERM / SIGINT  stop and exit 0.

A mount's pattern may also be `slides=DIR`: the JPEGs DIR/000.jpg, DIR/001.jpg, ... shown in
turn, --slide-seconds each, in a loop that follows the wall clock (a client that connects later
sees a later slide, as a real camera's picture moves on). `make run` uses one to show people.

Authentication (from the environment, so a password never shows in `ps`):
  RTSP_USER, RTSP_PASS  require these credentials on every mount
  RTSP_AUTH             digest (default) or basic
"""

import argparse
import os
import re
import signal
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtsp', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

DEFAULT_PATTERN = 'ball'
# What a frozen camera shows: a still picture (colour bars).
FROZEN_PATTERN = 'smpte'


def parse_args(argv):
    p = argparse.ArgumentParser(description='RTSP test camera (gst-rtsp-server)')
    p.add_argument('--port', type=int, default=8554, help='TCP port; 0 picks a free one')
    p.add_argument('--bind', default='127.0.0.1', help='address to listen on (default 127.0.0.1)')
    p.add_argument('--mount', action='append', default=[], metavar='PATH[:PATTERN]',
                   help='mount point, optionally with a videotestsrc pattern (default /cam:ball); repeatable')
    p.add_argument('--size', default='640x360', help='WIDTHxHEIGHT, e.g. 1920x1080 (default 640x360)')
    p.add_argument('--fps', type=int, default=15, help='frames per second (default 15)')
    p.add_argument('--slide-seconds', type=int, default=10, help='how long each slide of a slides= mount shows (default 10)')
    p.add_argument('--keyframe-interval', type=int, default=0,
                   help='frames between keyframes (default: half a second) so a new client starts fast')
    p.add_argument('--start-stalled', action='store_true', help='start as if SIGUSR1 had been received')
    args = p.parse_args(argv)

    m = re.fullmatch(r'(\d+)x(\d+)', args.size)
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 16:
        p.error(f'--size must be WIDTHxHEIGHT (at least 16x16), got {args.size!r}')
    args.width, args.height = int(m.group(1)), int(m.group(2))
    if not 1 <= args.fps <= 60:
        p.error(f'--fps must be 1..60, got {args.fps}')
    if not 0 <= args.port <= 65535:
        p.error(f'--port must be 0..65535, got {args.port}')

    mounts = []
    for spec in args.mount or ['/cam']:
        path, _, pattern = spec.partition(':')
        if not path.startswith('/') or len(path) < 2:
            p.error(f'--mount path must start with / (got {spec!r})')
        mounts.append((path, pattern or DEFAULT_PATTERN))
    if len({path for path, _ in mounts}) != len(mounts):
        p.error('--mount paths must be distinct')
    args.mounts = mounts
    return args


def pipeline(args, pattern):
    # x264 with zerolatency and a short GOP: a client that joins mid-stream waits at most
    # half a second for a keyframe. config-interval=1 repeats SPS/PPS with every keyframe.
    # The valve ("gate") is how SIGUSR1 stalls the camera without closing any socket; the
    # source ("src") is how SIGHUP freezes the picture.
    # animation-mode=wall-time: the media is rebuilt for each new client once the last one
    # left, and with the default (frame count) every fresh pipeline would start with the
    # ball in the same place; a real camera's picture moves on between captures.
    kim = args.keyframe_interval or max(1, args.fps // 2)
    if pattern.startswith('slides='):
        source = (
            f'multifilesrc name=slides location={os.path.join(pattern[len("slides="):], "%03d.jpg")} loop=true '
            f'caps=image/jpeg,framerate=1/{args.slide_seconds} ! jpegdec ! videoconvert ! videoscale ! videorate '
        )
    else:
        source = f'videotestsrc name=src is-live=true pattern={pattern} animation-mode=wall-time '
    return (
        f'( {source}'
        f'! video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 '
        f'! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={kim} '
        f'! video/x-h264,profile=constrained-baseline '
        f'! valve name=gate drop-mode=forward-sticky-events '
        f'! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )


class Camera:
    def __init__(self, args):
        self.stalled = args.start_stalled
        self.frozen = False
        self.slide_seconds = args.slide_seconds
        self.gates = set()
        # videotestsrc element -> its mount's own pattern
        self.sources = {}
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(args.bind)
        self.server.set_service(str(args.port))
        user, password = os.environ.get('RTSP_USER'), os.environ.get('RTSP_PASS')
        if user and password is None:
            sys.exit('rtsp-camera: RTSP_USER is set but RTSP_PASS is not')
        if user:
            self._require_auth(user, password, os.environ.get('RTSP_AUTH', 'digest'))
        for path, pattern in args.mounts:
            launch = pipeline(args, pattern)
            try:  # fail now, with the reason, rather than when the first client arrives
                Gst.parse_launch(launch.strip('() '))
            except GLib.Error as e:
                sys.exit(f'rtsp-camera: bad pipeline for {path} ({pattern}): {e.message}')
            factory = GstRtspServer.RTSPMediaFactory()
            factory.set_launch(launch)
            factory.set_shared(True)
            factory.connect('media-configure', self._on_media, pattern)
            if user:
                factory.add_role_from_structure(Gst.Structure.new_from_string(
                    f'{user}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true'))
            self.server.get_mount_points().add_factory(path, factory)

    def _require_auth(self, user, password, method):
        if method not in ('digest', 'basic'):
            sys.exit(f'rtsp-camera: RTSP_AUTH must be digest or basic, got {method!r}')
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(
            GstRtsp.RTSPAuthMethod.DIGEST if method == 'digest' else GstRtsp.RTSPAuthMethod.BASIC)
        token = GstRtspServer.RTSPToken()
        token.set_string('media.factory.role', user)
        if method == 'digest':
            auth.add_digest(user, password, token)
        else:
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        self.server.set_auth(auth)

    def _on_media(self, _factory, media, pattern):
        element = media.get_element()
        gate = element.get_by_name('gate')
        src = element.get_by_name('src')
        slides = element.get_by_name('slides')
        if gate is None:
            return
        gate.set_property('drop', self.stalled)
        self.gates.add(gate)
        if src is not None:
            src.set_property('pattern', FROZEN_PATTERN if self.frozen else pattern)
            self.sources[src] = pattern
        if slides is not None:
            folder = pattern[len('slides='):]
            count = len([n for n in os.listdir(folder) if re.fullmatch(r'\d{3}\.jpg', n)])
            if count:
                slides.set_property('index', int(GLib.get_real_time() / 1e6 // self.slide_seconds) % count)

        def forget(_m):
            self.gates.discard(gate)
            if src is not None:
                self.sources.pop(src, None)
        media.connect('unprepared', forget)

    def set_stalled(self, stalled):
        self.stalled = stalled
        for gate in self.gates:
            gate.set_property('drop', stalled)
        print('stalled' if stalled else 'resumed', flush=True)
        return GLib.SOURCE_CONTINUE

    def set_frozen(self, frozen):
        self.frozen = frozen
        for src, pattern in self.sources.items():
            src.set_property('pattern', FROZEN_PATTERN if frozen else pattern)
        print('frozen' if frozen else 'thawed', flush=True)
        return GLib.SOURCE_CONTINUE


def main(argv):
    Gst.init(None)
    args = parse_args(argv)
    cam = Camera(args)
    if cam.server.attach(None) == 0:
        sys.exit(f'rtsp-camera: cannot listen on {args.bind}:{args.port}')
    loop = GLib.MainLoop()

    def stop():
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, lambda: cam.set_stalled(True))
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, lambda: cam.set_stalled(False))
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGHUP, lambda: cam.set_frozen(True))
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGWINCH, lambda: cam.set_frozen(False))
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, stop)
    print(f'ready rtsp://{args.bind}:{cam.server.get_bound_port()}', flush=True)
    loop.run()
    # Streaming threads may still hold media; do not wait for their teardown on the way out.
    sys.stdout.flush()
    os._exit(0)


if __name__ == '__main__':
    main(sys.argv[1:])
