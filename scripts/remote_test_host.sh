#!/usr/bin/env bash
# Test scaffolding only (Paddock itself never needs root): as root, make the two accounts that play
# sandbox hosts in tests/remote and start a test-only OpenSSH server for them on loopback, with its
# own host key. The ordinary test user may write the accounts' authorized keys (in this folder only).
#   scripts/remote_test_host.sh start   (prints nothing; writes $PADDOCK_TEST_SSHD/info)
#   scripts/remote_test_host.sh stop
# PADDOCK_TEST_SSHD is the server's folder (default /tmp/paddock-test-sshd) and PADDOCK_TEST_SSHD_PORT
# its port (default: a free one). scripts/test.sh gives each run a folder of its own, so two runs
# at once each have their own server, and stopping one leaves the other's sessions alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir="${PADDOCK_TEST_SSHD:-/tmp/paddock-test-sshd}"
test_user="${PADDOCK_TEST_USER:-paddock-tester}"
accounts=(paddock-remote paddock-remote2)

descendants() {  # every process below $1
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

stop() {
  local pids=() pid
  if [ -f "$dir/sshd.pid" ]; then
    pid="$(cat "$dir/sshd.pid")"
    mapfile -t pids < <(descendants "$pid")
    kill "$pid" 2>/dev/null || true
  fi
  # What a test left running as a server account: the sessions of this server (they carry its
  # folder in their environment, see SetEnv below), and their processes.
  for a in "${accounts[@]}"; do
    id "$a" >/dev/null 2>&1 || continue
    for pid in $(pgrep -u "$a" 2>/dev/null); do
      if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qxF "PADDOCK_TEST_SSHD_RUN=$dir"; then
        pids+=("$pid")
      fi
    done
  done
  if [ "${#pids[@]}" -gt 0 ]; then kill -KILL "${pids[@]}" 2>/dev/null || true; fi
  # No other test server running: nothing of the accounts can belong to another run.
  if ! pgrep -f 'sshd -f /tmp/paddock-test-sshd[^ ]*/sshd_config' >/dev/null; then
    for a in "${accounts[@]}"; do
      if id "$a" >/dev/null 2>&1; then pkill -u "$a" 2>/dev/null || true; fi
    done
  fi
  rm -rf "$dir"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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
chmod 0755 "$dir"
install -d -m 0755 -o "$test_user" "$dir/keys"
# The sessions' temporary folder (TMPDIR, below): the accounts' runtime folders, where their VMs'
# run folders stay after the VMs stop (PADDOCK_KEEP_RUN_DIR) for a failed test to keep their logs
# (read as the account over SFTP), removed with this server's folder.
install -d -m 1777 "$dir/tmp"
ssh-keygen -q -t ed25519 -N '' -C paddock-test-host -f "$dir/host_key"
mkdir -p /run/sshd
for attempt in 1 2 3 4 5; do  # a free port can be taken between finding it and sshd binding it
  port="${PADDOCK_TEST_SSHD_PORT:-$(free_port)}"
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
SetEnv PADDOCK_TEST_SSHD_RUN=$dir PADDOCK_KEEP_RUN_DIR=1 TMPDIR=$dir/tmp
Subsystem sftp internal-sftp
LogLevel VERBOSE
CONF
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" || true
  for _ in $(seq 50); do [ -s "$dir/sshd.pid" ] && break; sleep 0.1; done
  [ -s "$dir/sshd.pid" ] && break
  echo "remote_test_host: sshd did not start on port $port (attempt $attempt)" >&2
  [ -n "${PADDOCK_TEST_SSHD_PORT:-}" ] && break
done
[ -s "$dir/sshd.pid" ] || { cat "$dir/sshd.log" >&2; exit 1; }
printf 'port=%s\nhost_key=%s\naccounts=%s\n' "$port" "$(ssh-keygen -lf "$dir/host_key.pub" | cut -d' ' -f2)" \
  "${accounts[*]}" > "$dir/info"
chmod 0644 "$dir/info" "$dir/sshd.log"
