#!/usr/bin/env bash
# Build (or reuse) the Paddock guest image. See guest_image/build.py.
#   ./build_vm.sh            build into ${PADDOCK_CACHE_DIR:-/var/cache/paddock}/guest/<hash>
#   ./build_vm.sh --force    rebuild even when nothing changed
#   ./build_vm.sh --renderer [--force]   the optional renderer layer over that image (previews of
#                            documents as they look: LibreOffice, no GUI; guest_image/layer.py)
# Building needs root (debootstrap): as an ordinary user it asks sudo, and only when the image
# is not already current. Using the image never needs root: it is world-readable.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x "$here/.venv/bin/python" ]; then py="$here/.venv/bin/python"; else py="$(command -v python3 || true)"; fi
fi
[ -n "$py" ] || { echo "build_vm: python3 is needed (apt-get install python3)" >&2; exit 1; }
cache="${PADDOCK_CACHE_DIR:-/var/cache/paddock}"
if [ "${1:-}" = "--renderer" ]; then
  shift
  read -r base layer < <("$py" "$here/guest_image/layer.py" --print-hash)
  if [ "${1:-}" != "--force" ] && [ "$(readlink "$cache/guest/current" 2>/dev/null)" = "$base" ] \
     && grep -q "\"inputs\": \"$layer\"" "$cache/guest/layers/$base-renderer/manifest.json" 2>/dev/null; then
    echo "renderer layer is up to date: $cache/guest/layers/$base-renderer"
    exit 0
  fi
  if [ "$(id -u)" -eq 0 ]; then exec "$py" "$here/guest_image/layer.py" --cache "$cache" "$@"; fi
  if command -v sudo >/dev/null; then
    exec sudo --preserve-env=PADDOCK_CACHE_DIR,PADDOCK_DEBIAN_MIRROR "$py" "$here/guest_image/layer.py" --cache "$cache" "$@"
  fi
  echo "build_vm: building the renderer layer needs root (mounts, chroot); run it as root or install sudo" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  hash="$("$py" "$here/guest_image/build.py" --print-hash)"
  if [ "${1:-}" != "--force" ] && [ -f "$cache/guest/$hash/manifest.json" ] \
     && [ "$(readlink "$cache/guest/current" 2>/dev/null)" = "$hash" ]; then
    echo "guest image is up to date: $cache/guest/$hash"
    exit 0
  fi
  if command -v sudo >/dev/null; then
    exec sudo --preserve-env=PADDOCK_CACHE_DIR,PADDOCK_DEBIAN_MIRROR "$py" "$here/guest_image/build.py" --cache "$cache" "$@"
  fi
  echo "build_vm: building the guest image needs root (debootstrap); run it as root or install sudo" >&2
  exit 1
fi
exec "$py" "$here/guest_image/build.py" --cache "$cache" "$@"
