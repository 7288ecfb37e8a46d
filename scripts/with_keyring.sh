#!/usr/bin/env bash
# Run a command with a real Secret Service: gnome-keyring-daemon, unlocked with a
# throwaway password, its keyrings in a temporary folder (never the user's own).
# Use inside a D-Bus session:  dbus-run-session -- scripts/with_keyring.sh CMD [ARG...]
set -euo pipefail
keyring_home="$(mktemp -d -t paddock-keyring-XXXXXX)"
trap 'rm -rf "$keyring_home"' EXIT
eval "$(printf '%s' "throwaway-$$-$RANDOM" | XDG_DATA_HOME="$keyring_home" \
  gnome-keyring-daemon --unlock --components=secrets 2>/dev/null)"
export GNOME_KEYRING_CONTROL SSH_AUTH_SOCK 2>/dev/null || true
"$@"
