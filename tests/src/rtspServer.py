"""GStreamer's RTSP server (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly
and -bad) serving an H.264 test stream, as an IP camera does. Run with /usr/bin/python3:
    rtspServer.py PORT PROFILE [WxH]  PROFILE: constrained-baseline | main; WxH default 640x360
Prints "ready rtsp://127.0.0.1:PORT/camera" once it listens; ends on SIGTERM."""
import signal
import sys

import gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

port, profile = sys.argv[1], sys.argv[2]
width, height = (sys.argv[3] if len(sys.argv) > 3 else '640x360').split('x')
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
    f'! video/x-h264,profile={profile} ! rtph264pay name=pay0 pt=96 config-interval=-1 )')
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
