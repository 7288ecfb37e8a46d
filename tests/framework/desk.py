"""Driving the window the way a person does (pytest-qt on Qt's offscreen platform): choose and
trust a folder, wait for the sandbox, type a message and send it. A timeout says what the window
showed instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot

from paddock.core.engine import Engine
from paddock.desk.desk import Desk, SandboxState
from paddock.ui.window import MainWindow

BOOT_MS = 180_000


def open_window(qtbot: QtBot, engine: Engine, desk: Desk | None = None) -> MainWindow:
    window = MainWindow(engine, desk or Desk())
    qtbot.addWidget(window)
    window.show()
    return window


def shown(window: MainWindow) -> str:
    """What the chat shows, for a failing test's message."""
    from PySide6.QtWidgets import QLabel

    texts = [w.text() for w in window.chat.transcript.findChildren(QLabel)]
    state = f"status={window.chat.status.text()!r} state={window.desk.sandbox_state} busy={window.desk.busy} "
    return state + " | ".join(texts)


def wait_window(qtbot: QtBot, window: MainWindow, predicate: Callable[[], bool], timeout: int = 120_000) -> None:
    try:
        qtbot.waitUntil(predicate, timeout=timeout)
    except Exception as exc:
        raise AssertionError(f"timed out; the window shows: {shown(window)}") from exc


def open_trusted(qtbot: QtBot, window: MainWindow, folder: Path) -> None:
    """Choose ``folder`` (as the folder dialog would), trust it if asked, wait for the sandbox."""
    from PySide6.QtCore import Qt

    window.choose_folder(folder)
    qtbot.waitUntil(lambda: window.folders.trust_box.isVisible() or window.stack.currentWidget() is window.chat)
    if window.folders.trust_box.isVisible():
        yes = window.folders.findChild(type(window.chat.send_button), "trustYes")
        qtbot.mouseClick(yes, Qt.MouseButton.LeftButton)
    wait_window(qtbot, window, lambda: window.desk.sandbox_state is SandboxState.READY, BOOT_MS)


def say(qtbot: QtBot, window: MainWindow, message: str) -> None:
    """Type ``message`` and press Send (once Send is enabled)."""
    from PySide6.QtCore import Qt

    wait_window(qtbot, window, window.chat.send_button.isEnabled, 30_000)
    qtbot.keyClicks(window.chat.input, message)
    qtbot.mouseClick(window.chat.send_button, Qt.MouseButton.LeftButton)
