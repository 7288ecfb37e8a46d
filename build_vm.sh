#!/usr/bin/env bash
# Build (or reuse) the Paddock guest image. See guest_image/build.py.
#   ./build_vm.sh            build into ${PADDOCK_CACHE_DIR:-~/.cache/paddock}/guest/<hash>
#   ./build_vm.sh --force    rebuild even when nothing changed
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x "$here/.venv/bin/python" ]; then py="$here/.venv/bin/python"; else py="$(command -v python3 || true)"; fi
fi
[ -n "$py" ] || { echo "build_vm: python3 is needed (apt-get install python3)" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    exec sudo --preserve-env=PADDOCK_CACHE_DIR,PADDOCK_DEBIAN_MIRROR,XDG_CACHE_HOME \
      "$py" "$here/guest_image/build.py" --cache "${PADDOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock}" "$@"
  fi
  echo "build_vm: building the guest image needs root (debootstrap); run it as root or install sudo" >&2
  exit 1
fi
exec "$py" "$here/guest_image/build.py" "$@"
