#!/usr/bin/env bash
# Set up (see scripts/setup.sh), then run every check: lint, types, import
# contracts, and the test suite with the real VM. Extra arguments go to pytest.
#
# Paddock runs as the person, so the tests do too. Run as an ordinary user, everything runs
# as you (the package-install tests, which need root to make a clean Debian root, are then
# skipped). Run as root (as CI does), root only installs and prepares; the suite runs as the
# ordinary user `paddock-tester` (created if missing), and only the package-install tests
# run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh

printf '\n==> ruff\n'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
printf '\n==> mypy --strict\n'
.venv/bin/mypy
printf '\n==> import contracts\n'
.venv/bin/lint-imports
printf '\n==> house rules\n'
.venv/bin/python scripts/house_rules.py

pytest_in_keyring() {  # a D-Bus session with a real gnome-keyring of its own, then pytest
  dbus-run-session -- ./scripts/with_keyring.sh .venv/bin/python -m pytest "$@"
}

# The user half runs in parallel workers (pytest-xdist; what keeps tests apart:
# tests/framework/parallel.py). PADDOCK_TEST_WORKERS says how many ("0": one process, no workers).
workers=(-n "${PADDOCK_TEST_WORKERS:-2}" --dist loadfile)

# A whole run (no test paths given) checks each package's coverage against its floor; a
# selection only reports it.
selection=0
for a in "$@"; do case "$a" in -*) ;; *) selection=1 ;; esac; done
coverage_floors() {  # $1: the coverage data of the run
  printf '\n==> coverage by package (floors: tests/framework/coverage.py)\n'
  if [ "$selection" -eq 1 ]; then .venv/bin/python -m tests.framework.coverage "$1" || true; return 0; fi
  .venv/bin/python -m tests.framework.coverage "$1"
}

if [ "$(id -u)" -ne 0 ]; then
  printf '\n==> tests, as %s (they boot the real guest under QEMU; the keychain is a real gnome-keyring)\n' "$(id -un)"
  covdir="$(mktemp -d -t paddock-coverage-XXXXXX)"
  trap 'rm -rf "$covdir"' EXIT
  set +e
  COVERAGE_FILE="$covdir/.coverage" pytest_in_keyring --cov=paddock --cov-report= "${workers[@]}" "$@"
  code=$?
  set -e
  coverage_floors "$covdir/.coverage" || { [ "$code" -ne 0 ] || code=1; }
  exit "$code"
fi

# As root: prepare, then hand the suite to an ordinary user. What a run shares with nobody
# (two runs at once each have their own): the managed-policy folder, the test sshd's folder and
# port, the coverage data.
PADDOCK_TEST_ADMIN_DIR="$(mktemp -d /tmp/paddock-test-admin.XXXXXX)"
PADDOCK_TEST_SSHD="$(mktemp -d /tmp/paddock-test-sshd.XXXXXX)"
covdir="$(mktemp -d /tmp/paddock-coverage.XXXXXX)"
export PADDOCK_TEST_ADMIN_DIR PADDOCK_TEST_SSHD
cleanup() {
  [ -z "${side:-}" ] || kill -- "$side" 2>/dev/null || true  # the stages beside the user half, if still going
  ./scripts/remote_test_host.sh stop
  rm -rf "$PADDOCK_TEST_ADMIN_DIR" "$covdir" "${logs:-}"
}
trap cleanup EXIT
eval "$(./scripts/test_user.sh)"   # sets TEST_USER, TEST_HOME, ADMIN_DIR
chown "$TEST_USER:" "$covdir"
# The sandbox-host tests (tests/remote): two server accounts and a test-only sshd on loopback.
PADDOCK_TEST_USER="$TEST_USER" ./scripts/remote_test_host.sh start
# The Debian 13 stage and the root half leave much of the CPU unused (downloads, debootstrap, apt:
# the Debian 13 stage used about 0.7 of the 2 cores on average). PADDOCK_TEST_OVERLAP=1 runs them
# beside the user half, one after the other, into a log printed once the user half is done; not
# yet the default: the whole command has not been measured that way (tests/README.md).
overlap="${PADDOCK_TEST_OVERLAP:-0}"
logs="$(mktemp -d /tmp/paddock-test-logs.XXXXXX)"
# Other releases (supported means tested here): a clean root of each, set up as a new user with
# sudo would (scripts/ci_release.sh). By default on a whole run; PADDOCK_TEST_RELEASES says which
# ("" for none) when a selection of tests is given or to change the list.
default_releases=trixie
[ "$selection" -eq 1 ] && default_releases=""
releases_and_root_half() {  # writes each stage's exit code to $logs/<stage>.code
  for suite in ${PADDOCK_TEST_RELEASES-$default_releases}; do
    printf '\n==> Paddock on %s: a clean root, the README set-up as a user with sudo, doctor, sandbox exec, release tests\n' "$suite"
    ./scripts/ci_release.sh "$suite"
    echo $? > "$logs/release-$suite.code"
  done
  printf '\n==> tests that install the package into a clean Debian root (as root)\n'
  PADDOCK_TEST_ROLE=root PADDOCK_TEST_USER="$TEST_USER" pytest_in_keyring -p no:cacheprovider "$@"
  echo $? > "$logs/root.code"
}
set +e
side=""
if [ "$overlap" = 1 ]; then
  printf '\n==> beside the user half: the releases (%s), then the tests that install the package; log: %s\n' \
    "${PADDOCK_TEST_RELEASES-$default_releases}" "$logs/side.log"
  releases_and_root_half "$@" > "$logs/side.log" 2>&1 &
  side=$!
else
  releases_and_root_half "$@"
fi
printf '\n==> tests, as the ordinary user %s (they boot the real guest under QEMU; the keychain is a real gnome-keyring)\n' "$TEST_USER"
runuser -u "$TEST_USER" -- env -i \
  PATH=/usr/local/bin:/usr/bin:/bin HOME="$TEST_HOME" USER="$TEST_USER" LOGNAME="$TEST_USER" LANG=C.UTF-8 \
  CI="${CI:-}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PADDOCK_TEST_ROLE=user \
  PADDOCK_TEST_ADMIN_DIR="$ADMIN_DIR" PADDOCK_TEST_ARTIFACTS="$PWD/test-artifacts" \
  PADDOCK_TEST_SSHD="$PADDOCK_TEST_SSHD" COVERAGE_FILE="$covdir/.coverage" \
  bash -c 'cd "$1" && shift && dbus-run-session -- ./scripts/with_keyring.sh .venv/bin/python -m pytest -p no:cacheprovider "$@"' \
  paddock-tests "$PWD" --cov=paddock --cov-report= "${workers[@]}" "$@"
user_code=$?
if [ -n "$side" ]; then
  printf '\n==> (waiting for the stages beside the user half)\n'
  wait "$side"
  cat "$logs/side.log"
fi
codes=()
for f in "$logs"/release-*.code; do [ -e "$f" ] && codes+=("$(cat "$f")"); done
root_code="$(cat "$logs/root.code" 2>/dev/null || echo 1)"  # no code: the side stages died
codes+=("$root_code" "$user_code")
coverage_floors "$covdir/.coverage"
cov_code=$?
set -e
# pytest's 5 is "no test selected": fine for one half when a selection falls wholly in the other.
n=${#codes[@]}
if [ "${codes[n-2]}" -eq 5 ] && [ "$user_code" -eq 5 ]; then exit 5; fi
[ "$user_code" -eq 5 ] || codes+=("$cov_code")
for c in "${codes[@]}"; do
  if [ "$c" -ne 0 ] && [ "$c" -ne 5 ]; then exit "$c"; fi
done
