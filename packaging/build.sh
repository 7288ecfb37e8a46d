#!/usr/bin/env bash
# Build one signed Debian package per supported release (debsigs).
#
#   packaging/build.sh [--release debian12|debian13|all]    # default: all
#   packaging/build.sh --release ubuntu2404                  # a preview, not supported yet (docs/INSTALL-IT.md)
#   packaging/build.sh --no-renderer                         # leave out the document renderer layer
#
# Writes dist/paddock_<version>+deb12_amd64.deb (Debian 12, Python 3.11) and/or
# dist/paddock_<version>+deb13_amd64.deb (Debian 13, Python 3.13) and prints each path on a line
# of its own. Each holds Paddock's wheels and those of the egress gateway *for that release's
# Python* (downloaded as binary wheels for that interpreter and platform, so the build machine's
# own Python does not matter), the guest image (built here, so it is covered by the signature),
# the guest's optional document renderer layer (LibreOffice without its GUI, for previews that show
# a document's real layout: about 180 MB; --no-renderer leaves it out, and previews fall back to a
# simple drawing), the desktop entry and the managed-policy folder. Its preinst refuses any other release; its
# postinst makes Paddock's own Python environments in /opt/paddock from the bundled wheels
# (no network, nothing in the system's pip); prerm removes them. Signed with $PADDOCK_SIGNING_KEY,
# or a throwaway key (and says so).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }
quiet_pip() { .venv/bin/python -m pip --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" >&2 || true; }

SUPPORTED=(debian12 debian13)   # what "all" builds: installed and used in CI on clean roots
PREVIEW=(ubuntu2404)            # built on request only: checked by hand, not in CI (docs/INSTALL-IT.md)
# release -> os-release ID and VERSION_ID, name, Python, newest glibc (manylinux tags), version suffix,
# whether it ships the AppArmor profile (AppArmor 4 knows the `userns` rule; Debian 12's 3.0 does not).
release_info() {
  case "$1" in
    debian12) echo "debian 12 Debian_12_(bookworm) 3.11 36 deb12 no" ;;
    debian13) echo "debian 13 Debian_13_(trixie) 3.13 41 deb13 yes" ;;
    ubuntu2404) echo "ubuntu 24.04 Ubuntu_24.04_(noble) 3.12 39 ubuntu24.04 yes" ;;
    *) return 1 ;;
  esac
}

releases=(all)
renderer=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --release) [ $# -ge 2 ] || die "--release needs a value: ${SUPPORTED[*]} or all"; IFS=, read -ra releases <<< "$2"; shift 2 ;;
    --release=*) IFS=, read -ra releases <<< "${1#--release=}"; shift ;;
    --no-renderer) renderer=no; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (usage: packaging/build.sh [--release ${SUPPORTED[*]// /|}|all])" ;;
  esac
done
[ "${releases[*]}" = all ] && releases=("${SUPPORTED[@]}")
for r in "${releases[@]}"; do
  release_info "$r" >/dev/null || die "no such release: $r (supported: ${SUPPORTED[*]}; preview: ${PREVIEW[*]})"
done

[ -x .venv/bin/python ] || ./scripts/setup.sh
version=$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
arch=$(dpkg --print-architecture)
[ "$arch" = amd64 ] || die "packages are built for amd64 only (this machine is $arch)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common="$work/common"
mkdir -p "$common/opt/paddock/guest" "$common/usr/bin" "$common/usr/share/applications" \
         "$common/usr/share/doc/paddock" "$common/etc/paddock" dist

say "Guest image (built now if needed; it ships inside the signed package)"
./build_vm.sh >&2
image=$(.venv/bin/python -c 'from paddock.vm import find_image; print(find_image().root)')
cp "$image"/* "$common/opt/paddock/guest/"
if [ "$renderer" = yes ]; then
  say "The guest's document renderer layer (built now if needed)"
  ./build_vm.sh --renderer >&2
  layer=$(.venv/bin/python -c 'from paddock.vm import find_image; print(*[l.path.parent for l in find_image().layers])')
  [ -n "$layer" ] || die "the renderer layer was built but is not found beside the image $image"
  # Found beside the image: /opt/paddock/guest -> /opt/paddock/layers/<image hash>-renderer/
  mkdir -p "$common/opt/paddock/layers/$(basename "$layer")"
  cp "$layer"/* "$common/opt/paddock/layers/$(basename "$layer")/"
fi
install -m 0755 packaging/debian/paddock.sh "$common/usr/bin/paddock"
install -m 0644 packaging/desktop/paddock.desktop "$common/usr/share/applications/paddock.desktop"
install -m 0644 packaging/policy/managed-policy.example.json "$common/etc/paddock/managed-policy.example.json"
install -m 0644 packaging/policy/README "$common/etc/paddock/README"
install -m 0644 docs/INSTALL-IT.md "$common/usr/share/doc/paddock/INSTALL-IT.md"
cp packaging/gateway-requirements.txt "$common/opt/paddock/gateway-requirements.txt"

say "Paddock's own wheel, and pure-Python wheels for what the index has only as source"
# Paddock itself is pure Python, as are a few of the gateway's dependencies published only as
# source (pyperclip): built once here, they suit every release. Everything else is downloaded
# below as a binary wheel for each release's Python.
quiet_pip wheel --quiet --no-deps --wheel-dir "$work/paddock-wheel" .
paddock_whl=$(ls "$work"/paddock-wheel/paddock-*-py3-none-any.whl)
quiet_pip wheel --quiet --wheel-dir "$work/host-wheels" -r packaging/gateway-requirements.txt
mkdir -p "$work/pure"
cp "$work"/host-wheels/*-none-any.whl "$work/pure/"

export GNUPGHOME="${GNUPGHOME:-$HOME/.gnupg}"
key="${PADDOCK_SIGNING_KEY:-}"
if [ -z "$key" ]; then
  export GNUPGHOME="$PWD/dist/throwaway-gnupg"
  # An agent left by an earlier build would answer for a key folder that is about to go.
  gpgconf --homedir "$GNUPGHOME" --kill gpg-agent 2>/dev/null || true
  rm -rf "$GNUPGHOME"; mkdir -m 0700 -p "$GNUPGHOME"
  trap 'rm -rf "$work"; gpgconf --homedir "$GNUPGHOME" --kill gpg-agent 2>/dev/null || true' EXIT
  gpg --batch --quiet --passphrase '' --quick-gen-key "Paddock throwaway signing key <paddock@invalid>" ed25519 sign 1d
  key=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^sec/ {print $5; exit}')
  say "PADDOCK_SIGNING_KEY is not set: signing with a THROWAWAY key ($key, valid one day, in dist/throwaway-gnupg)."
  say "Do not deploy these packages; set PADDOCK_SIGNING_KEY to your organisation's key."
fi
longid=$(gpg --batch --with-colons --list-keys "$key" | awk -F: '/^pub/ {print $5; exit}')

built=()
for release in "${releases[@]}"; do
  read -r os_id os_version name py glibc suffix apparmor <<< "$(release_info "$release")"
  name=${name//_/ }
  pyabi="cp${py/./}"
  stage="$work/$release"
  opt="$stage/opt/paddock"
  out="dist/paddock_${version}+${suffix}_${arch}.deb"
  say "$name: wheels for Python $py"
  cp -al "$common" "$stage"   # hard links: the guest image is not copied again
  mkdir -p "$stage/DEBIAN"
  # Binary wheels for that interpreter (CPython $py, its ABI or the stable one) and any manylinux
  # tag that release's C library (glibc 2.$glibc) can run.
  target=(--only-binary=:all: --python-version "$py" --implementation cp --abi "$pyabi" --abi abi3 --abi none
          --platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
  for g in $(seq 5 "$glibc"); do target+=(--platform "manylinux_2_${g}_x86_64"); done
  quiet_pip download --quiet "${target[@]}" --find-links "$work/pure" --dest "$opt/wheels" "$paddock_whl"
  ls "$opt"/wheels/paddock-*.whl >/dev/null 2>&1 || die "$name: the wheels for Paddock could not be collected (see above)"
  quiet_pip download --quiet "${target[@]}" --find-links "$work/pure" --dest "$opt/gateway-wheels" \
    -r packaging/gateway-requirements.txt
  ls "$opt"/gateway-wheels/mitmproxy-*.whl >/dev/null 2>&1 \
    || die "$name: the wheels for the egress gateway could not be collected (see above)"
  other=$(find "$opt/wheels" "$opt/gateway-wheels" -name '*-cp3*-cp3*.whl' ! -name "*-$pyabi-$pyabi-*")
  [ -z "$other" ] || die "$name: these wheels are for another Python than $py: $other"

  conffiles="/etc/paddock/README"
  if [ "$apparmor" = yes ]; then
    # Ubuntu 24.04 and later let a program make a user namespace only under an AppArmor profile
    # that allows it: this one allows it to Paddock's own copy of bubblewrap, and nothing else.
    install -D -m 0644 packaging/apparmor/paddock-jail "$stage/etc/apparmor.d/paddock-jail"
    conffiles="$conffiles
/etc/apparmor.d/paddock-jail"
    printf 'interest-noawait /usr/bin/bwrap\n' > "$stage/DEBIAN/triggers"
  fi
  printf '%s\n' "$conffiles" > "$stage/DEBIAN/conffiles"
  for f in preinst postinst prerm postrm; do
    sed -e "s/@OS_ID@/$os_id/g" -e "s/@OS_VERSION@/$os_version/g" -e "s/@NAME@/$name/g" \
        -e "s/@SUFFIX@/$suffix/g" -e "s/@JAIL@/$apparmor/g" "packaging/debian/$f" > "$stage/DEBIAN/$f"
    chmod 0755 "$stage/DEBIAN/$f"
  done
  size=$(du -sk "$stage" | cut -f1)
  next="${py%%.*}.$(( ${py#*.} + 1 ))"
  sed -e "s/@VERSION@/$version+$suffix/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
      -e "s/@PYTHON@/python3 (>= $py), python3 (<< $next)/" -e "s/@NAME@/$name/" \
      packaging/debian/control > "$stage/DEBIAN/control"

  say "$name: building $out"
  rm -f "$out"
  # gzip, not zstd: debsig-verify in Debian 12 cannot verify zstd members
  dpkg-deb --root-owner-group -Zgzip -z3 --build "$stage" "$out" >&2
  debsigs --sign=origin -k "$longid" "$out"
  rm -rf "$stage"
  built+=("$out")
done

gpg --batch --yes --armor --export "$longid" > dist/paddock-signing-key.asc
packaging/make-debsig-policy.sh dist/paddock-signing-key.asc dist/debsig >&2
for out in "${built[@]}"; do
  say "Done: $out ($(du -h "$out" | cut -f1)), signed by $longid"
done
say "Verify with: packaging/verify.sh ${built[0]}"
printf '%s\n' "${built[@]}"
