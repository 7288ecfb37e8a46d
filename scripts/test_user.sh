#!/usr/bin/env bash
# As root, before the suite: make the ordinary user the tests run as, let it read this
# checkout, and prepare the only things that must be root-owned (a managed-policy folder).
# Prints shell assignments: TEST_USER, TEST_HOME, ADMIN_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
user="${PADDOCK_TEST_USER:-paddock-tester}"
if ! id "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --comment "Paddock tests" "$user" >&2
fi
# A second group the user belongs to, for the shared group folder tests (a set-group-ID folder
# owned by a group that is not the user's primary one: tests/security/test_group_folders.py).
getent group paddock-team >/dev/null || groupadd paddock-team
id -nG "$user" | tr ' ' '\n' | grep -qx paddock-team || usermod -aG paddock-team "$user" >&2
home="$(getent passwd "$user" | cut -d: -f6)"
# The checkout must be readable by that user: open the folders above it for it alone
# (an ACL entry, not a wider mode), where they are closed.
dir="$PWD"
while [ "$dir" != "/" ]; do
  if ! runuser -u "$user" -- test -x "$dir"; then
    setfacl -m "u:$user:x" "$dir" 2>/dev/null || chmod o+x "$dir"
  fi
  dir="$(dirname "$dir")"
done
runuser -u "$user" -- test -r README.md -a -x .venv/bin/python \
  || { echo "test_user: $user cannot read $PWD (is it readable by others?)" >&2; exit 1; }
# What the tests write inside the checkout: only the logs of failed tests.
mkdir -p test-artifacts
chown "$user:" test-artifacts
# A managed policy is trusted only when root owns it and every folder above it: tests that
# need one use this folder, which only root can write.
admin_dir="${PADDOCK_TEST_ADMIN_DIR:-/tmp/paddock-test-admin}"  # scripts/test.sh: its run's own
rm -rf "$admin_dir"
install -d -m 0755 -o root -g root "$admin_dir"
printf '{"version": 1}\n' > "$admin_dir/managed-policy.json"
chmod 0644 "$admin_dir/managed-policy.json"
printf 'TEST_USER=%q\nTEST_HOME=%q\nADMIN_DIR=%q\n' "$user" "$home" "$admin_dir"
