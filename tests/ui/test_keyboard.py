"""Keyboard-only use of the chat page: typing and Enter send, Esc stops, Ctrl+N starts a new
conversation, Tab reaches every control in a sensible order. The page is driven with real key
events (pytest-qt); the Desk is not involved (the page's signals are what the window acts on)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from paddock.desk import SandboxState
from paddock.ui.chat import ChatPage


def test_the_chat_works_from_the_keyboard(qtbot: QtBot, tmp_path: Path) -> None:
    page = ChatPage()
    qtbot.addWidget(page)
    page.reset(tmp_path)
    page.set_sandbox(SandboxState.READY, "")
    page.show()
    qtbot.waitExposed(page)
    page.activateWindow()
    page.input.setFocus()
    qtbot.waitUntil(page.input.hasFocus)

    with qtbot.waitSignal(page.send_requested) as sent:
        qtbot.keyClicks(page.input, "Add up the figures")
        qtbot.keyClick(page.input, Qt.Key.Key_Return)
    assert sent.args == ["Add up the figures"] and page.stop_button.isEnabled()

    with qtbot.waitSignal(page.stop_requested):
        qtbot.keyClick(page.input, Qt.Key.Key_Escape)
    page.set_working(False)
    with qtbot.waitSignal(page.new_conversation_requested):
        qtbot.keyClick(page.input, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)

    # Tab from the message box reaches Send, and going round reaches the sidebar and the buttons.
    reached: list[QWidget] = []
    for _ in range(30):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        reached.append(QApplication.focusWidget())
    names = [w.objectName() for w in reached]
    assert names[0] == "sendButton"
    for control in ("newConversation", "historyList", "chatNotes", "chatSettings", "finishButton", "messageEdit"):
        assert control in names, f"Tab never reaches {control}: {names}"
