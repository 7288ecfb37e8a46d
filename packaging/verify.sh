#!/usr/bin/env bash
# Verify a Paddock package's signature with debsig-verify under Paddock's policy.
#   packaging/verify.sh FILE.deb [KEY.asc]
# KEY.asc defaults to dist/paddock-signing-key.asc (written by packaging/build.sh). Without a key
# file, the system-wide policy in /etc/debsig/policies is used. Exit 0 only when it verifies.
set -euo pipefail
deb=${1:?usage: packaging/verify.sh FILE.deb [KEY.asc]}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key=${2:-$here/../dist/paddock-signing-key.asc}
[ -f "$deb" ] || { echo "verify: no such file: $deb" >&2; exit 2; }
if [ -f "$key" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  "$here/make-debsig-policy.sh" "$key" "$tmp" >/dev/null
  args=(--policies-dir "$tmp/policies" --keyrings-dir "$tmp/keyrings")
else
  args=()
fi
if debsig-verify "${args[@]}" "$deb"; then
  echo "verify: $deb is signed by Paddock's key and intact"
else
  code=$?
  echo "verify: $deb did NOT verify (debsig-verify exit $code): do not install it" >&2
  exit 1
fi
