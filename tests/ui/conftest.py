"""GUI tests: pytest-qt on Qt's offscreen platform; a Qt warning fails the test
(``qt_log_level_fail`` in pyproject.toml)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
