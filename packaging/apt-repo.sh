#!/usr/bin/env bash
# Make (or refresh) a local apt repository with a signed Release file:
#   PADDOCK_SIGNING_KEY=<key> packaging/apt-repo.sh DIR PACKAGE.deb...
# Writes DIR/{Packages,Packages.gz,Release,InRelease,Release.gpg,paddock-archive-keyring.gpg}.
# Without PADDOCK_SIGNING_KEY the throwaway key of the last packaging/build.sh is used (tests only).
set -euo pipefail
dir=${1:?usage: packaging/apt-repo.sh DIR PACKAGE.deb...}; shift
[ $# -gt 0 ] || { echo "apt-repo: name at least one package" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="${PADDOCK_SIGNING_KEY:-}"
if [ -z "$key" ]; then
  export GNUPGHOME="$here/../dist/throwaway-gnupg"
  [ -d "$GNUPGHOME" ] || { echo "apt-repo: set PADDOCK_SIGNING_KEY (no throwaway key either)" >&2; exit 2; }
  key=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^sec/ {print $5; exit}')
  echo "apt-repo: signing with the THROWAWAY key $key (tests only)" >&2
  trap 'gpgconf --kill gpg-agent 2>/dev/null || true' EXIT   # no agent left behind for a throwaway key
fi
mkdir -p "$dir"
cp "$@" "$dir/"
cd "$dir"
apt-ftparchive packages . > Packages
gzip -9kf Packages
apt-ftparchive -o APT::FTPArchive::Release::Origin=Paddock -o APT::FTPArchive::Release::Label=Paddock \
  -o APT::FTPArchive::Release::Suite=stable release . > Release
gpg --batch --yes --local-user "$key" --clearsign -o InRelease Release
gpg --batch --yes --local-user "$key" -abs -o Release.gpg Release
gpg --batch --yes --export "$key" > paddock-archive-keyring.gpg
echo "apt-repo: $dir is ready (signed by $key)" >&2
