"""``paddock`` with no arguments: the desktop window."""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from paddock.core.engine import Engine
from paddock.desk import Desk
from paddock.ui import theme
from paddock.ui.window import MainWindow

log = logging.getLogger(__name__)
SHOWN = "window shown"  # logged once the event loop has shown the window (benchmarks/window.py)


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Paddock")
    theme.apply(app)  # light or dark, as the system is (and follows it)
    engine = Engine()
    desk = Desk()
    window = MainWindow(engine, desk)
    window.show()
    QTimer.singleShot(0, lambda: log.info(SHOWN))
    try:
        return app.exec()
    finally:
        engine.close()
