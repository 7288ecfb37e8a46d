#!/usr/bin/env bash
# A clean root of another Debian release, made with debootstrap and entered as a machine of that
# release would be used: its own /, the host's kernel, /proc, /sys and /dev. For CI on Debian 13
# (scripts/ci_release.sh) and for trying a release by hand. Needs root (debootstrap, mounts).
#
#   scripts/release_root.sh make SUITE DIR            debootstrap SUITE into DIR (skipped when done)
#   scripts/release_root.sh enter DIR [--bind PATH]... -- CMD [ARG...]
#                                                      run CMD as root inside DIR
#
# Entered with a private mount namespace and pivot_root, not chroot (the kernel refuses a user
# namespace to a chrooted process, and Paddock's folder sharing runs in one) and not bubblewrap
# (it sets no_new_privs, so sudo inside could not work, and the README's set-up uses sudo).
# Each --bind PATH shows the host's PATH at the same place inside.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "release_root: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap and mounts)"

mirror() {
  if [ -n "${PADDOCK_DEBIAN_MIRROR:-}" ]; then echo "$PADDOCK_DEBIAN_MIRROR"; return; fi
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from buildlib import apt_mirror; print(apt_mirror())' \
    "$here/guest_image"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  make)
    [ $# -eq 2 ] || die "usage: release_root.sh make SUITE DIR"
    suite="$1"; dir="$2"
    if [ -f "$dir/.paddock-root" ] && [ "$(cat "$dir/.paddock-root")" = "$suite" ]; then
      echo "release root is ready: $dir ($suite)"; exit 0
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    m="$(mirror)"
    echo "==> debootstrap $suite into $dir (about a minute)"
    debootstrap --variant=minbase --include=sudo,ca-certificates "$suite" "$dir" "$m" >/dev/null \
      || die "debootstrap $suite failed (is the mirror $m reachable?)"
    printf 'deb %s %s main\n' "$m" "$suite" > "$dir/etc/apt/sources.list"
    # The host's name resolution and the certificate authorities its administrator added, so apt
    # and pip inside reach the same registries the same way the host does.
    cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
    printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost ip6-localhost ip6-loopback\n' "$(hostname)" > "$dir/etc/hosts"
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
      cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
      chroot "$dir" update-ca-certificates >/dev/null
    fi
    echo "$suite" > "$dir/.paddock-root"
    echo "release root is ready: $dir ($suite)"
    ;;
  enter)
    [ $# -ge 1 ] || die "usage: release_root.sh enter DIR [--bind PATH]... -- CMD [ARG...]"
    dir="$(cd "$1" && pwd)"; shift
    [ -f "$dir/.paddock-root" ] || die "$dir is not a root made by 'release_root.sh make'"
    binds=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
      [ "$1" = "--bind" ] && [ $# -ge 2 ] || die "unknown option: $1"
      binds+=("$(cd "$2" && pwd)"); shift 2
    done
    [ "${1:-}" = "--" ] && shift
    [ $# -ge 1 ] || die "no command given"
    exec unshare --mount --propagation private -- /bin/sh -ec '
      dir="$1"; shift; n="$1"; shift
      mount --rbind "$dir" "$dir"
      mount -t proc proc "$dir/proc"
      mount --rbind /sys "$dir/sys"
      mount --rbind /dev "$dir/dev"
      mount -t tmpfs -o mode=1777 tmpfs "$dir/dev/shm"
      i=0
      while [ "$i" -lt "$n" ]; do
        mkdir -p "$dir$1"; mount --rbind "$1" "$dir$1"; shift; i=$((i + 1))
      done
      cd "$dir"; mkdir -p .old-root; pivot_root . .old-root
      cd /; umount -l /.old-root; rmdir /.old-root
      exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" "$@"
    ' release-root "$dir" "${#binds[@]}" "${binds[@]}" "$@"
    ;;
  *) die "usage: release_root.sh make SUITE DIR | enter DIR [--bind PATH]... -- CMD [ARG...]" ;;
esac
