#!/usr/bin/env bash
# Set up Paddock on this machine: system packages, .venv/, generated code, guest image.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(qemu-system-x86 libseccomp2 acl bubblewrap
              # building the guest image (build_vm.sh): its kernel, busybox and root come from Debian's
              # packages of the guest's own release, whatever this machine runs
              debootstrap debian-archive-keyring squashfs-tools cpio gcc libc6-dev zstd
              python3-venv gnome-keyring dbus dbus-x11 libsecret-tools
              # systemd-analyze checks the schedules' timer units (tests/schedule); systemctl --user enables them
              systemd
              # what Qt (PySide6) needs to draw the window, offscreen in tests or under Xvfb
              libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 fonts-dejavu-core
              libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0
              libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 xvfb xauth
              # building, signing and verifying the Debian package (packaging/, tests/packaging)
              dpkg-dev binutils gnupg gpgv debsigs debsig-verify apt-utils
              # the sandbox-host tests (tests/remote) run a real OpenSSH server on loopback
              openssh-server)

say() { printf '\n==> %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The folder-sharing daemon: QEMU up to 7.2 (Debian 12) ships its own C virtiofsd; later QEMU
# (Debian 13, Ubuntu 24.04) ships none, and the Rust one is the package virtiofsd.
if [ ! -x /usr/lib/qemu/virtiofsd ] && ! dpkg-query -W -f='${Status}' virtiofsd 2>/dev/null | grep -q "install ok installed"; then
  qemu_ver="$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)"
  if [ -z "$qemu_ver" ] || dpkg --compare-versions "$qemu_ver" ge 1:8.0; then missing+=(virtiofsd); fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "Installing system packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "setup: please install these packages as root: ${missing[*]}" >&2; exit 1; fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  # QEMU itself may have come only now: a QEMU without its own daemon needs the Rust one.
  if [ ! -x /usr/lib/qemu/virtiofsd ] && ! dpkg-query -W -f='${Status}' virtiofsd 2>/dev/null | grep -q "install ok installed"; then
    say "Installing the folder-sharing daemon (virtiofsd)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq virtiofsd >/dev/null
  fi
fi

# The system's Python (Debian's), not one under a user's home: Paddock runs as the person, and
# an interpreter in root's home (pyenv, say) is one that no other user can start.
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3)"
py_home="$(dirname "$py")"
venv_for() {  # $1: folder; true when it exists and was made from $py
  [ -x "$1/bin/python" ] && grep -qx "home = $py_home" "$1/pyvenv.cfg" 2>/dev/null
}
if ! venv_for .venv; then
  say "Creating the Python environment in .venv/ (with $py)"
  rm -rf .venv
  "$py" -m venv .venv
fi
# Skipped when nothing it depends on changed, so a second run needs no network.
stamp_now="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat .venv/.paddock-setup 2>/dev/null)" != "$stamp_now" ]; then
  say "Installing Paddock and its development tools into .venv/"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
  echo "$stamp_now" > .venv/.paddock-setup
fi

if ! venv_for .venv-gateway || [ ! -x .venv-gateway/bin/mitmdump ]; then
  # The egress gateway runs mitmproxy in an environment of its own: mitmproxy pins an
  # older h11 than the model SDK needs, so the two cannot share .venv/.
  say "Installing the egress gateway (mitmproxy) into .venv-gateway/"
  rm -rf .venv-gateway
  "$py" -m venv .venv-gateway
fi
# Again when its requirements changed (the gateway imports some of Paddock's own modules).
gateway_now="$(sha256sum packaging/gateway-requirements.txt | cut -d' ' -f1)"
if [ "$(cat .venv-gateway/.paddock-setup 2>/dev/null)" != "$gateway_now" ]; then
  say "Installing the egress gateway's requirements into .venv-gateway/"
  .venv-gateway/bin/python -m pip install --quiet --disable-pip-version-check -r packaging/gateway-requirements.txt
  echo "$gateway_now" > .venv-gateway/.paddock-setup
fi

say "Checking the generated gRPC code"
.venv/bin/python scripts/gen_protos.py --check

say "Building the guest image (skipped when nothing changed)"
./build_vm.sh
say "Building the guest's document renderer layer (skipped when nothing changed)"
./build_vm.sh --renderer
