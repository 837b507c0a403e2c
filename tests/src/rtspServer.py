"""GStreamer's RTSP server (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly,
-good and -bad) serving an H.264 test stream, as an IP camera does, with or without a sound track.
Run with /usr/bin/python3:
    rtspServer.py PORT PROFILE [WxH] [AUDIO] [HZ]
PROFILE: constrained-baseline | main; WxH default 640x360; AUDIO: none (default) | pcma | opus,
a sine of HZ (default 880) as G.711 A-law (8 kHz) or Opus (48 kHz), as IP doorbells send.
Prints "ready rtsp://127.0.0.1:PORT/camera" once it listens; ends on SIGTERM."""
import signal
import sys

import gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

port, profile = sys.argv[1], sys.argv[2]
width, height = (sys.argv[3] if len(sys.argv) > 3 else '640x360').split('x')
audio = sys.argv[4] if len(sys.argv) > 4 else 'none'
hz = sys.argv[5] if len(sys.argv) > 5 else '880'
SOUND = {
    'none': '',
    # G.711 A-law at 8 kHz mono (gstreamer1.0-plugins-good), payload type 8 as cameras send it.
    'pcma': f' audiotestsrc is-live=true wave=sine freq={hz} volume=0.5 ! audioconvert ! audioresample '
            '! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8',
    # Opus at 48 kHz mono, 20 ms frames (gstreamer1.0-plugins-base).
    'opus': f' audiotestsrc is-live=true wave=sine freq={hz} volume=0.5 ! audioconvert ! audioresample '
            '! audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=20 ! rtpopuspay name=pay1 pt=97',
}
if audio not in SOUND:
    print(f'AUDIO is none, pcma or opus, not {audio}', flush=True)
    sys.exit(2)
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
# Main profile with B-frames, as many IP cameras send; constrained-baseline as browsers take it.
frames = 'bframes=2' if profile == 'main' else 'bframes=0'
factory.set_launch(
    f'( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate=30/1 '
    f'! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 {frames} '
    f'! video/x-h264,profile={profile} ! rtph264pay name=pay0 pt=96 config-interval=-1{SOUND[audio]} )')
# Not shared: each client (the probe, then the encoder) gets its own pipeline, as from a camera;
# a shared one can hand a client that joins while the last one leaves an end of stream.
factory.set_shared(False)
server.get_mount_points().add_factory('/camera', factory)
if server.attach(None) == 0:
    print(f'cannot listen on 127.0.0.1:{port}', flush=True)
    sys.exit(1)
print(f'ready rtsp://127.0.0.1:{port}/camera', flush=True)
loop = GLib.MainLoop()
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
loop.run()
