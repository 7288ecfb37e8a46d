"""``paddock`` with no arguments: the desktop window."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from paddock.core.engine import Engine
from paddock.session import Desk
from paddock.ui.window import MainWindow


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Paddock")
    engine = Engine()
    desk = Desk()
    window = MainWindow(engine, desk)
    window.show()
    try:
        return app.exec()
    finally:
        engine.close()
