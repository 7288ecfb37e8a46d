#!/usr/bin/env bash
# Test scaffolding only (Paddock itself never needs root): as root, make the two accounts that play
# sandbox hosts in tests/remote and start a test-only OpenSSH server for them on loopback, with its
# own host key. The ordinary test user may write the accounts' authorized keys (in this folder only).
#   scripts/remote_test_host.sh start   (prints nothing; writes /tmp/paddock-test-sshd/info)
#   scripts/remote_test_host.sh stop
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=/tmp/paddock-test-sshd
test_user="${PADDOCK_TEST_USER:-paddock-tester}"
port="${PADDOCK_TEST_SSHD_PORT:-2222}"
accounts=(paddock-remote paddock-remote2)

stop() {
  if [ -f "$dir/sshd.pid" ]; then kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true; fi
  for a in "${accounts[@]}"; do  # what a test left running as a server account
    if id "$a" >/dev/null 2>&1; then pkill -u "$a" 2>/dev/null || true; fi
  done
  rm -rf "$dir"
}

if [ "${1:-start}" = stop ]; then stop; exit 0; fi
stop
for a in "${accounts[@]}"; do
  if ! id "$a" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --comment "Paddock sandbox host (tests)" "$a" >&2
  fi
  usermod -p '*' "$a"  # no password, but not "locked": sshd (UsePAM no) then lets a key in
  chmod 0700 "$(getent passwd "$a" | cut -d: -f6)"
  # The account runs the checkout's Paddock: let it through the folders above it (an ACL entry).
  d="$PWD"
  while [ "$d" != "/" ]; do
    runuser -u "$a" -- test -x "$d" || setfacl -m "u:$a:x" "$d" 2>/dev/null || chmod o+x "$d"
    d="$(dirname "$d")"
  done
done
install -d -m 0755 -o root -g root "$dir"
install -d -m 0755 -o "$test_user" "$dir/keys"
ssh-keygen -q -t ed25519 -N '' -C paddock-test-host -f "$dir/host_key"
mkdir -p /run/sshd
cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/keys/%u
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers ${accounts[*]}
MaxSessions 64
MaxStartups 32
ClientAliveInterval 5
Subsystem sftp internal-sftp
LogLevel VERBOSE
CONF
/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
for _ in $(seq 50); do [ -s "$dir/sshd.pid" ] && break; sleep 0.1; done
printf 'port=%s\nhost_key=%s\naccounts=%s\n' "$port" "$(ssh-keygen -lf "$dir/host_key.pub" | cut -d' ' -f2)" \
  "${accounts[*]}" > "$dir/info"
chmod 0644 "$dir/info" "$dir/sshd.log"
