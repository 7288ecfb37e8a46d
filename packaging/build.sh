#!/usr/bin/env bash
# Build dist/paddock_<version>_amd64.deb and sign it (debsigs).
#
#   packaging/build.sh            # signs with $PADDOCK_SIGNING_KEY, or a throwaway key (and says so)
#
# The package holds Paddock's wheels and those of the egress gateway, the guest image (built
# here, so it is covered by the signature), the desktop entry and the managed-policy folder
# with an example. Its postinst makes Paddock's own Python environments in /opt/paddock from
# the bundled wheels (no network, nothing in the system's pip); prerm removes them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '==> %s\n' "$*" >&2; }

[ -x .venv/bin/python ] || ./scripts/setup.sh
version=$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
arch=$(dpkg --print-architecture)
out="dist/paddock_${version}_${arch}.deb"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/root"
opt="$stage/opt/paddock"
mkdir -p "$opt/wheels" "$opt/gateway-wheels" "$opt/guest" "$stage/usr/bin" "$stage/usr/share/applications" \
         "$stage/usr/share/doc/paddock" "$stage/etc/paddock" "$stage/DEBIAN" dist

say "Guest image (built now if needed; it ships inside the signed package)"
./build_vm.sh >&2
image=$(.venv/bin/python -c 'from paddock.vm import find_image; print(find_image().root)')
cp "$image"/* "$opt/guest/"

say "Wheels for Paddock and its dependencies"
.venv/bin/python -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$opt/wheels" . 2>&1 \
  | grep -v "^WARNING: Location" >&2 || true
ls "$opt/wheels"/paddock-*.whl >/dev/null
say "Wheels for the egress gateway (mitmproxy)"
.venv/bin/python -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$opt/gateway-wheels" \
  -r packaging/gateway-requirements.txt 2>&1 | grep -v "^WARNING: Location" >&2 || true
ls "$opt/gateway-wheels"/mitmproxy-*.whl >/dev/null
cp packaging/gateway-requirements.txt "$opt/gateway-requirements.txt"

install -m 0755 packaging/debian/paddock.sh "$stage/usr/bin/paddock"
install -m 0644 packaging/desktop/paddock.desktop "$stage/usr/share/applications/paddock.desktop"
install -m 0644 packaging/policy/managed-policy.example.json "$stage/etc/paddock/managed-policy.example.json"
install -m 0644 packaging/policy/README "$stage/etc/paddock/README"
install -m 0644 docs/INSTALL-IT.md "$stage/usr/share/doc/paddock/INSTALL-IT.md"
for f in postinst prerm postrm; do install -m 0755 "packaging/debian/$f" "$stage/DEBIAN/$f"; done
printf '/etc/paddock/README\n' > "$stage/DEBIAN/conffiles"
size=$(du -sk "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" packaging/debian/control \
  > "$stage/DEBIAN/control"

say "Building $out"
rm -f "$out"
# gzip, not zstd: debsig-verify in Debian 12 cannot verify zstd members
dpkg-deb --root-owner-group -Zgzip -z3 --build "$stage" "$out" >&2

say "Signing"
export GNUPGHOME="${GNUPGHOME:-$HOME/.gnupg}"
key="${PADDOCK_SIGNING_KEY:-}"
if [ -z "$key" ]; then
  export GNUPGHOME="$PWD/dist/throwaway-gnupg"
  rm -rf "$GNUPGHOME"; mkdir -m 0700 -p "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key "Paddock throwaway signing key <paddock@invalid>" ed25519 sign 1d
  key=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^sec/ {print $5; exit}')
  say "PADDOCK_SIGNING_KEY is not set: signed with a THROWAWAY key ($key, valid one day, in dist/throwaway-gnupg)."
  say "Do not deploy this package; set PADDOCK_SIGNING_KEY to your organisation's key."
fi
longid=$(gpg --batch --with-colons --list-keys "$key" | awk -F: '/^pub/ {print $5; exit}')
debsigs --sign=origin -k "$longid" "$out"
gpg --batch --yes --armor --export "$longid" > dist/paddock-signing-key.asc
packaging/make-debsig-policy.sh dist/paddock-signing-key.asc dist/debsig >&2
say "Done: $out ($(du -h "$out" | cut -f1)), signed by $longid"
say "Verify with: packaging/verify.sh $out"
echo "$out"
