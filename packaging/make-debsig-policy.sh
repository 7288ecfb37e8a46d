#!/usr/bin/env bash
# Turn a public key (armored) into the debsig-verify policy and keyring for Paddock packages:
#   packaging/make-debsig-policy.sh KEY.asc DIR   → DIR/policies/<KEYID>/paddock.pol, DIR/keyrings/<KEYID>/paddock.gpg
# Install system-wide by copying DIR/policies/* to /etc/debsig/policies/ and DIR/keyrings/* to
# /usr/share/debsig/keyrings/ (docs/INSTALL-IT.md).
set -euo pipefail
key_file=$1; dir=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export GNUPGHOME="$tmp"
gpg --batch --quiet --import "$key_file"
keyid=$(gpg --batch --with-colons --list-keys | awk -F: '/^pub/ {print $5; exit}')
mkdir -p "$dir/policies/$keyid" "$dir/keyrings/$keyid"
gpg --batch --export "$keyid" > "$dir/keyrings/$keyid/paddock.gpg"
cat > "$dir/policies/$keyid/paddock.pol" <<POL
<?xml version="1.0"?>
<!DOCTYPE Policy SYSTEM "https://www.debian.org/debsig/1.0/policy.dtd">
<Policy xmlns="https://www.debian.org/debsig/1.0/">
  <Origin Name="Paddock" id="$keyid" Description="Paddock desktop packages"/>
  <Selection>
    <Required Type="origin" File="paddock.gpg" id="$keyid"/>
  </Selection>
  <Verification MinOptional="0">
    <Required Type="origin" File="paddock.gpg" id="$keyid"/>
  </Verification>
</Policy>
POL
echo "$keyid"
