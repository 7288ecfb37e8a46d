"""Every control of the window and its dialogs has an accessible name (what a screen reader says),
after the main views have been built and filled. The events are the ones the engine publishes."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot

from paddock.core.engine import Engine
from paddock.desk import Desk, SandboxState, SandboxStatus, TextDelta, ToolCalled, ToolFinished
from paddock.ui.window import MainWindow

CONTROLS = (QAbstractButton, QLineEdit, QPlainTextEdit, QTextEdit, QAbstractItemView, QComboBox)


def _unnamed() -> list[str]:
    out = []
    for w in QApplication.allWidgets():
        if isinstance(w, CONTROLS) and not w.accessibleName().strip() and _ours(w):
            out.append(f"{type(w).__name__} {w.objectName()!r} in {w.window().objectName()!r}")
    return out


def _ours(w: QWidget) -> bool:
    """Qt's own parts of a composite widget (a scroll bar's buttons, a table's corner) excepted."""
    if isinstance(w, QHeaderView) or type(w).__name__ in {"QTableCornerButton", "QToolButton"}:
        return False  # named by the table's own name and its column titles
    parent = w.parentWidget()
    while parent is not None:
        if isinstance(parent, QComboBox):
            return False  # the drop-down list of a named combo box
        parent = parent.parentWidget()
    return not w.objectName().startswith("qt_")


def test_every_control_has_an_accessible_name(
    qtbot: QtBot, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(8)}")
    window = MainWindow(engine, Desk())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.welcome.checks.text() != "", timeout=30_000)
    window.show_folders()
    window.chat.reset(tmp_path)
    window._on_event(SandboxStatus(SandboxState.READY, ""))
    window._on_event(ToolCalled("c1", "run_command", {"command": "ls"}, ""))
    window._on_event(ToolFinished("c1", "run_command", False, "", "done", 1.0))
    window._on_event(TextDelta("Done."))
    window.open_settings()
    window.open_notes()
    qtbot.waitUntil(lambda: window.bridge.idle, timeout=30_000)
    missing = _unnamed()
    assert not missing, "controls without an accessible name:\n" + "\n".join(missing)
    assert window.chat.send_button.accessibleName() == "Send"
    for dialog in (window.settings, window.notes):
        assert dialog is not None
        dialog.close()
