#!/usr/bin/env bash
# Render the main window on a virtual X screen (Xvfb) to docs/screenshot.png (or the file given).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec xvfb-run -a -s "-screen 0 1280x900x24" env QT_QPA_PLATFORM=xcb .venv/bin/python scripts/screenshot.py "$@"
