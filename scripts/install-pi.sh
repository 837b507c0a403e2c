#!/usr/bin/env bash
# Installs the doorbell on a Raspberry Pi (64-bit Raspberry Pi OS, Bookworm or Trixie) or any
# Debian-like Linux box, from a clone of this repository: README "On a Raspberry Pi".
#   sudo scripts/install-pi.sh                    /opt/doorbell, the doorbell-device user in gpio, video
#                                                 and audio, the systemd unit, ffmpeg gpiod alsa-utils
#   scripts/install-pi.sh --prefix DIR [--arch arm64]   into a folder only (nothing else on the machine)
# Every other option goes to scripts/install-device.mjs, which does the work (it says what it installs).
# What this script adds: a Node to run it (Pi OS's own is too old or absent), fetched from the npm
# registry's node-linux-<arch> package and checked against the registry's sha512, and the doorbell's
# bundle (device/dist) built first when the clone has none, which takes the full development
# install (npm ci) in the clone, once: the installed doorbell keeps none of it.
set -euo pipefail
cd "$(dirname "$0")/.."

case "$(uname -m)" in
  aarch64|arm64) host=arm64 ;;
  x86_64) host=x64 ;;
  armv7l|armv6l) echo "install-pi: this is a 32-bit system; the doorbell needs the 64-bit Raspberry Pi OS (Pi 3, 4, 5, Zero 2 W)" >&2; exit 2 ;;
  *) echo "install-pi: no Node build for $(uname -m)" >&2; exit 2 ;;
esac

registry=${npm_config_registry:-https://registry.npmjs.org}
registry=${registry%/}
build=.build
mkdir -p "$build"

# Fetches <package>@<version> from the registry into $build/<dir>, checking the tarball's sha512.
fetch_package () {
  local name=$1 version=$2 dir=$3
  [[ -d "$build/$dir" ]] && return 0
  echo "install-pi: fetching $name@$version from $registry"
  python3 - "$registry" "$name" "$version" "$build/$dir" <<'PY'
import base64, hashlib, io, json, sys, tarfile, urllib.request
registry, name, version, dest = sys.argv[1:]
meta = json.load(urllib.request.urlopen(f"{registry}/{name.replace('/', '%2f')}/{version}"))
data = urllib.request.urlopen(meta["dist"]["tarball"]).read()
algorithm, digest = meta["dist"]["integrity"].split("-", 1)
if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != digest:
    sys.exit(f"install-pi: {name}@{version}: the tarball does not match the registry's {algorithm}")
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    members = []
    for member in tar.getmembers():
        member.name = member.name.split("/", 1)[1] if "/" in member.name else ""
        # Plain files and folders inside the package only (Python 3.11.2, Bookworm's, has no extraction filter).
        if member.name and not member.name.startswith("/") and ".." not in member.name.split("/") and (member.isfile() or member.isdir()):
            members.append(member)
    tar.extractall(dest, members=members)
PY
}

lock_version () {
  python3 -c 'import json,sys; print(json.load(open("package-lock.json"))["packages"]["node_modules/"+sys.argv[1]]["version"])' "$1"
}

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if (( node_major < 22 )); then
  fetch_package "node-linux-$host" "$(lock_version node)" node
  chmod +x "$build/node/bin/node"
  export PATH="$PWD/$build/node/bin:$PATH"
fi

if [[ ! -f device/dist/main.js || ! -f device/dist/init.js ]]; then
  # npm itself, the version package.json names (packageManager), run by the Node above.
  npm_version=$(python3 -c 'import json; print(json.load(open("package.json"))["packageManager"].split("@")[1])')
  fetch_package npm "$npm_version" npm
  echo "install-pi: building the doorbell (npm ci, then the device's bundle); this takes a while on a Pi"
  node "$build/npm/bin/npm-cli.js" ci --no-audit --no-fund --loglevel=error
  node "$build/npm/bin/npm-cli.js" run build --workspace device
fi

if [[ " $* " == *" --prefix "* ]]; then
  exec node scripts/install-device.mjs "$@"
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-pi: installing into / needs root: sudo scripts/install-pi.sh (or --prefix DIR)" >&2
  exit 2
fi
node scripts/install-device.mjs --system "$@"
echo "install-pi: installed. Next: sudo doorbell init, then sudo systemctl enable --now doorbell-device"
