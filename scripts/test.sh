#!/usr/bin/env bash
# Set up (see scripts/setup.sh), then run every check: lint, types, import
# contracts, and the test suite with the real VM. Extra arguments go to pytest.
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
printf '\n==> tests (they boot the real guest under QEMU; the keychain is a real gnome-keyring)\n'
exec dbus-run-session -- ./scripts/with_keyring.sh .venv/bin/python -m pytest "$@"
