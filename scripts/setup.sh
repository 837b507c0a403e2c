#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks, then the npm dependencies.
#   scripts/setup.sh          for the demo (ffmpeg: the system's, else the npm-shipped static build)
#   scripts/setup.sh --test   also Debian's chromium, ffmpeg and certutil for the browser tests, mosquitto and its clients
#                             (the bench compares the embedded hub with it), Redis and PostgreSQL (the
#                             cluster tests), and nginx (with its stream
#                             module), coturn and systemd-analyze, which the tests run on deployment/,
#                             and GStreamer's RTSP server (an IP camera for the RTSP tests),
#                             qemu-user with the arm64 C libraries and the arm64 tarballs of the
#                             doorbell's install (tests/integration/arm64-install.test.ts);
#                             none is left running as a service
# Never downloads a browser build: Chromium comes from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
if [[ "${1:-}" == "--test" ]]; then
  # Quick replies: the doorbell renders each one with espeak-ng (the tests check what it says).
  command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
  command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
  [[ -x /usr/sbin/mosquitto ]] || command -v mosquitto >/dev/null 2>&1 || need_apt+=(mosquitto)
  # The broker abuse test drives the hub with mosquitto's own clients, as a person would.
  command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
  # certutil: the HTTPS browser test trusts the hub's CA in an NSS database, as a person installs it.
  command -v certutil >/dev/null 2>&1 || need_apt+=(libnss3-tools)
  # deployment/: Debian's nginx has SSL, HTTP/2, proxy and map built in; the stream module comes apart.
  [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
  [[ -f /usr/lib/nginx/modules/ngx_stream_module.so ]] || need_apt+=(libnginx-mod-stream)
  # The cluster tests (tests/integration/cluster*.test.ts) start Redis and PostgreSQL themselves, on loopback.
  [[ -x /usr/bin/redis-server ]] || need_apt+=(redis-server)
  [[ -x /usr/lib/postgresql/15/bin/initdb ]] || need_apt+=(postgresql)
  [[ -x /usr/bin/turnserver ]] || need_apt+=(coturn)
  # systemd-analyze verify checks the deployment/systemd units (systemd need not be running).
  command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
  # The RTSP tests run GStreamer's RTSP server as an IP camera (tests/src/rtspServer.py, /usr/bin/python3):
  # x264enc is in -ugly, the RTP payloaders and alawenc (the camera's sound) in -good, audiotestsrc and
  # opusenc in -base (which -good depends on).
  /usr/bin/python3 -c 'import gi' >/dev/null 2>&1 || need_apt+=(python3-gi)
  [[ -f /usr/lib/x86_64-linux-gnu/girepository-1.0/GstRtspServer-1.0.typelib || -f /usr/lib/aarch64-linux-gnu/girepository-1.0/GstRtspServer-1.0.typelib ]] || need_apt+=(gir1.2-gst-rtsp-server-1.0)
  dpkg -s gstreamer1.0-plugins-ugly >/dev/null 2>&1 || need_apt+=(gstreamer1.0-plugins-ugly)
  dpkg -s gstreamer1.0-plugins-bad >/dev/null 2>&1 || need_apt+=(gstreamer1.0-plugins-bad)
  dpkg -s gstreamer1.0-plugins-good >/dev/null 2>&1 || need_apt+=(gstreamer1.0-plugins-good)
  # The arm64 install runs under qemu-user (no binfmt_misc here: the test calls qemu-aarch64-static).
  command -v qemu-aarch64-static >/dev/null 2>&1 || need_apt+=(qemu-user-static)
  [[ -f /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]] || need_apt+=(libc6-arm64-cross)
  [[ -d /usr/aarch64-linux-gnu/lib ]] && ls /usr/aarch64-linux-gnu/lib/libstdc++.so.6* >/dev/null 2>&1 || need_apt+=(libstdc++6-arm64-cross)
elif ! command -v espeak-ng >/dev/null 2>&1; then
  # The demo runs without it: the doorbell warns and its quick replies are off.
  echo "setup: espeak-ng is not installed: quick replies stay off (sudo apt-get install espeak-ng)" >&2
fi
if (( ${#need_apt[@]} )); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${need_apt[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The tests start nginx and coturn themselves, on loopback; Debian's packages start their
    # services on install (ports 80, 3478): stop and disable the ones installed just now.
    if [[ -d /run/systemd/system ]]; then
      for service in nginx coturn redis-server postgresql; do
        if [[ " ${need_apt[*]} " == *" $service "* ]]; then systemctl disable --now "$service" >/dev/null 2>&1 || true; fi
      done
    fi
  else
    echo "setup: please install ${need_apt[*]} (sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

# npm ci installs exactly what package-lock.json holds (every platform's optional packages are in it)
# and never rewrites it, so a Pi and a CI run get what was tested. It runs when node_modules is missing
# or the lock changed since the last install (the stamp holds the lock's hash).
stamp=node_modules/.doorbell-installed
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -d node_modules || ! -f $stamp || $(cat "$stamp") != "$lock_hash" ]]; then
  echo "setup: installing npm dependencies (npm ci)"
  if ! npm ci --no-audit --no-fund --loglevel=error; then
    echo "setup: npm ci failed; if package.json changed, update the lock with npm install and commit it" >&2
    exit 1
  fi
  echo "$lock_hash" >"$stamp"
fi

# The arm64 install test runs without network (scripts/isolated.sh): the tarballs it installs (the
# arm64 Node, node-datachannel's arm64 build) are fetched now, checked against the lock, and kept.
if [[ "${1:-}" == "--test" ]]; then
  node scripts/install-device.mjs --arch arm64 --download-only --packages node_modules/.cache/doorbell-install >/dev/null
fi
