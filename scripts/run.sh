#!/usr/bin/env bash
# Set up (see scripts/setup.sh), then open Paddock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
exec .venv/bin/paddock "$@"
