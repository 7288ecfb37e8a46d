#!/usr/bin/env bash
# Paddock on another Debian release, the way a new user with sudo would meet it: a fresh root of
# that release (scripts/release_root.sh), a user `alice` who may sudo, this checkout copied to her
# home, then, as her: the README's set-up (which installs the release's packages with sudo and
# builds the guest image there), `paddock doctor`, `paddock sandbox exec`, and the tests that
# depend on the release (QEMU, the folder-sharing daemon, the change guard, the quick start).
#
#   sudo scripts/ci_release.sh [SUITE]          SUITE: trixie (Debian 13, the default)
#   sudo scripts/ci_release.sh SUITE --bench [ARG...]
#       the same root and set-up, then `python -m benchmarks ARG...` as her instead of the tests
#       (not part of CI: benchmarks are not tests); writes benchmarks/results/latest-SUITE.json
#       here, beside Debian 12's latest.json. ARG defaults to the short set in docs/BENCHMARKS.md.
#
# Run by scripts/test.sh as root. The root lives in $PADDOCK_RELEASE_ROOTS (default
# /var/tmp/paddock-release-roots) and is made anew each run, so nothing from an earlier run or
# from this machine's own release can hide a missing step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
suite="${1:-trixie}"
shift || true
bench=
if [ "${1:-}" = --bench ]; then
  bench=1; shift
  bench_args=("$@")
  [ ${#bench_args[@]} -gt 0 ] || bench_args=(--boots 5 --execs 100 --turns 10 --undo-mb 0 --windows 0)
fi
base="${PADDOCK_RELEASE_ROOTS:-/var/tmp/paddock-release-roots}"
root="$base/$suite"
user=alice
say() { printf '\n==> [%s] %s\n' "$suite" "$*"; }
[ "$(id -u)" -eq 0 ] || { echo "ci_release: needs root (it makes a clean root of $suite)" >&2; exit 1; }

# The tests that depend on the release: QEMU's version (boot, the saved sandbox, the warm pool),
# the folder-sharing daemon (shares, ownership, the change guard and undo), and the gateway on
# that release's Python and mitmproxy.
RELEASE_TESTS=(
  tests/vm/test_sandbox.py
  tests/vm/test_snapshot.py
  tests/vm/test_warm_pool.py
  tests/security/test_change_guard.py
  tests/security/test_group_folders.py
  tests/unit/test_guard_calls.py
  tests/egress/test_gateway_properties.py
  tests/security/test_ownership.py
  tests/session/test_undo_vm.py
)

t0=$SECONDS
say "a clean root"
rm -rf "$root"
mkdir -p "$base"
scripts/release_root.sh make "$suite" "$root"
# A second group of hers, for the shared team folder test (tests/security/test_group_folders.py).
chroot "$root" groupadd paddock-team
chroot "$root" useradd --create-home --shell /bin/bash --groups sudo,paddock-team "$user"
printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$user" > "$root/etc/sudoers.d/$user"
chmod 0440 "$root/etc/sudoers.d/$user"
# This checkout's files as they are now (committed or not), as a new user's clone would hold them.
dest="$root/home/$user/paddock"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar -c --null -T - | tar -x -C "$dest"
chroot "$root" chown -R "$user:" "/home/$user/paddock"
mkdir -p "$repo/test-artifacts"

as_user() {  # as alice, in her clone; a D-Bus session with a keyring of her own where asked
  scripts/release_root.sh enter "$root" -- runuser -u "$user" -- \
    env HOME="/home/$user" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
    PADDOCK_ACCEL=tcg CI="${CI:-}" PYTHONUNBUFFERED=1 PADDOCK_TEST_ROLE=user \
    bash -c 'cd ~/paddock && eval "$1"' as-user "$1"
}

say "the README's set-up, as $user (apt with sudo, .venv, the guest image built on $suite)"
as_user './scripts/setup.sh'
printf '    set-up took %d s\n' $((SECONDS - t0))

say "paddock doctor, as $user"
as_user 'dbus-run-session -- ./scripts/with_keyring.sh .venv/bin/paddock doctor'

say "paddock sandbox exec, as $user"
as_user 'mkdir -p ~/work && .venv/bin/paddock sandbox exec --folder ~/work -- sh -c "echo made-in-the-guest > proof.txt; id -u"'
owner="$(stat -c %u "$root/home/$user/work/proof.txt")"
[ "$owner" = "$(chroot "$root" id -u "$user")" ] && grep -qx made-in-the-guest "$root/home/$user/work/proof.txt" \
  || { echo "ci_release: the guest's file is missing or not $user's (owner uid: $owner)" >&2; exit 1; }

if [ -n "$bench" ]; then
  say "python -m benchmarks ${bench_args[*]}, as $user"
  versions='echo "QEMU: $(qemu-system-x86_64 --version | head -1)"; echo "virtiofsd: $(/usr/libexec/virtiofsd --version 2>/dev/null | head -1)"; echo "host kernel: $(uname -r)"; echo "Python: $(python3 --version)"; uptime'
  as_user "$versions"
  as_user "dbus-run-session -- ./scripts/with_keyring.sh .venv/bin/python -m benchmarks ${bench_args[*]} --out benchmarks/results/latest-$suite.json"
  as_user "$versions"
  cp "$root/home/$user/paddock/benchmarks/results/latest-$suite.json" "$repo/benchmarks/results/latest-$suite.json"
  say "benchmarks written to benchmarks/results/latest-$suite.json in $((SECONDS - t0)) s"
  exit 0
fi

say "the tests that depend on the release, as $user"
as_user "dbus-run-session -- ./scripts/with_keyring.sh .venv/bin/python -m pytest -p no:cacheprovider -q ${RELEASE_TESTS[*]}" \
  || { code=$?; cp -r "$root/home/$user/paddock/test-artifacts" "$repo/test-artifacts/$suite" 2>/dev/null || true; exit $code; }
say "passed in $((SECONDS - t0)) s"
