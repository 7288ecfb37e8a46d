"""The window follows the system's colours and font size: with a dark palette, what the person
wrote and the assistant's answer are drawn dark with light text; a larger system font makes the
text larger. Real widgets, drawn offscreen and read back pixel by pixel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from paddock.ui.chat import ChatPage


@pytest.fixture
def dark(qapp: QApplication) -> Iterator[QPalette]:
    before = QGuiApplication.palette()
    palette = QPalette()
    for role, colour in {
        QPalette.ColorRole.Window: "#202124", QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#2b2d30", QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.WindowText: "#e8eaed", QPalette.ColorRole.Button: "#303134",
        QPalette.ColorRole.ButtonText: "#e8eaed",
    }.items():  # fmt: skip
        palette.setColor(role, QColor(colour))
    qapp.setPalette(palette)
    yield palette
    qapp.setPalette(before)


def _lightness(page: ChatPage, name: str) -> float:
    target = page.findChild(QWidget, name)
    assert target is not None
    image = target.grab().toImage()
    corner = QColor(image.pixel(2, 2))
    return corner.lightnessF()


def test_messages_follow_a_dark_palette(qtbot: QtBot, dark: QPalette, tmp_path: Path) -> None:
    page = ChatPage()
    qtbot.addWidget(page)
    page.reset(tmp_path)
    page.add_user("Add up the figures")
    page.add_text("The total is **42**.")
    page.show()
    qtbot.waitExposed(page)
    assert _lightness(page, "userMessage") < 0.3  # not a light box with light text on a dark desktop
    assert _lightness(page, "assistantMessage") < 0.3


def test_text_follows_the_system_font_size(qtbot: QtBot, qapp: QApplication, tmp_path: Path) -> None:
    before = QApplication.font()
    try:
        sizes = []
        for points in (10, 16):
            font = QFont(before)
            font.setPointSize(points)
            qapp.setFont(font)
            page = ChatPage()
            qtbot.addWidget(page)
            page.reset(tmp_path)
            page.add_user("Add up the figures")
            page.show()
            sizes.append(page.findChild(type(page.status), "userMessage").sizeHint().height())
        assert sizes[1] > sizes[0]
    finally:
        qapp.setFont(before)
