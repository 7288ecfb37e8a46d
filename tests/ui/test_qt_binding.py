"""The Qt binding keeps Python's books straight (#20 review): PySide6 6.12.0 on Python 3.11 drops a
reference to ``None`` on every call of a method that returns nothing, so a window in use aborts
("deallocating None") after a few thousand calls; a long streamed answer did it. pyproject pins
below 6.12; this fails if a binding with that fault comes back. Real Qt (offscreen)."""

from __future__ import annotations

import sys

from pytestqt.qtbot import QtBot

from paddock.ui.answer import AnswerView


def test_calls_that_return_nothing_keep_none_alive(qtbot: QtBot) -> None:
    view = AnswerView()
    qtbot.addWidget(view)
    before = sys.getrefcount(None)
    for i in range(500):
        view.setFixedHeight(40 + i % 3)
        view.append_text("x")
        view.draw()
    assert sys.getrefcount(None) >= before - 50, "the Qt binding loses references to None"
