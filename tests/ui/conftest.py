"""GUI tests: pytest-qt on Qt's offscreen platform; a Qt warning fails the test
(``qt_log_level_fail`` in pyproject.toml). ``scripted_window`` (``tests/framework/desk.py``): a
window on a scripted model with a trusted folder open."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.framework.desk import scripted_window

__all__ = ["scripted_window"]
