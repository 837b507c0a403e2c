#!/usr/bin/env bash
# Runs a command in a private network namespace, when we are root and the kernel allows it:
# every socket a test opens then stays inside it, by construction.
# Inside: loopback, plus a tap interface that holds the default route (198.18.0.1/24, a
# benchmarking range), because Chromium gathers no ICE candidates on a host without one.
# Nothing reads the tap: a packet sent "out" there is dropped inside the namespace.
# Elsewhere it runs the command as is (the tests use 127.0.0.1 either way).
set -euo pipefail
if [[ "${DOORBELL_NO_NETNS:-}" != 1 && $(id -u) -eq 0 ]] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
  exec unshare -n -- bash -c '
    set -e
    ip link set lo up
    if [[ -c /dev/net/tun ]] && command -v python3 >/dev/null; then
      # Hold the tap open (TUNSETIFF, IFF_TAP|IFF_NO_PI) so that it has carrier.
      python3 -c "import fcntl,struct,os,time; f=os.open(\"/dev/net/tun\",os.O_RDWR); fcntl.ioctl(f,0x400454ca,struct.pack(\"16sH\",b\"doorbell0\",0x1002)); time.sleep(86400)" &
      holder=$!
      trap "kill $holder 2>/dev/null" EXIT
      for _ in $(seq 50); do ip link show doorbell0 >/dev/null 2>&1 && break; sleep 0.1; done
      ip addr add 198.18.0.1/24 dev doorbell0
      ip link set doorbell0 up
      ip route add default dev doorbell0
    fi
    "$@"' isolated "$@"
fi
echo "isolated: no private network namespace here; running on the host (loopback only)" >&2
exec "$@"
