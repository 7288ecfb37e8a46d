"""Conversations per folder in the window's sidebar: a new conversation on demand, an earlier one
reopened with its messages, answers and cards, and the assistant carrying on from it.

Real: the engine, the sandbox (QEMU, virtiofs, gRPC: the command runs in the guest), the
conversation files in the host's app-data folder. The fake is the model service (the loopback
Messages API server in ``tests/fakes``), which also records what the assistant sent it.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from paddock.ui.cards import ToolCard
from tests.fakes.messages_api import text, tool
from tests.framework.desk import OpenScripted, say, wait_window


def _said(request: dict[str, object]) -> list[str]:
    out = []
    for m in request["messages"]:  # type: ignore[attr-defined]
        for b in m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]:
            if b.get("type") == "text" and m["role"] == "user":
                out.append(b["text"])
    return out


@pytest.mark.vm
def test_new_conversation_and_reopen_an_earlier_one(qtbot: QtBot, scripted_window: OpenScripted) -> None:
    steps = [
        tool("run_command", command="echo 12 > total.txt && cat total.txt"),
        text("## Done\n\nThe total is **12**."),
        text("Hello again."),
        text("We were talking about the total: 12."),
    ]
    opened = scripted_window(steps, folder="Budget")
    window, api = opened.window, opened.api
    chat = window.chat
    say(qtbot, window, "Add up the budget")
    wait_window(qtbot, window, lambda: chat._answer is not None and "12" in chat._answer.text())
    qtbot.waitUntil(lambda: not window.desk.busy and chat.history.count() == 1)
    assert chat.history.item(0).text().startswith("Add up the budget\n")

    # A new conversation: an empty page, the first one kept in the sidebar.
    qtbot.mouseClick(chat.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: not chat.cards and chat.history.count() == 1 and "(this one)" not in chat.history.item(0).text()
    )
    say(qtbot, window, "Just saying hello")
    wait_window(qtbot, window, lambda: chat._answer is not None and chat._answer.text() == "Hello again.")
    qtbot.waitUntil(lambda: chat.history.count() == 2)
    assert _said(api.requests[-1]) == ["Just saying hello"]  # the model saw only the new one

    # Reopen the first: its message, card and answer are drawn again, and the assistant goes on from it.
    titles = [chat.history.item(i).text() for i in range(2)]
    assert titles[0].startswith("Just saying hello") and titles[0].endswith("(this one)")
    chat.history.setCurrentRow(1)
    chat.history.itemActivated.emit(chat.history.item(1))
    qtbot.waitUntil(lambda: len(chat.cards) == 1)
    [card] = chat.cards.values()
    assert isinstance(card, ToolCard) and card.summary.text() == "Ran a command"
    assert "What it printed:\n12" in card.detail.toPlainText() and "untrusted_data" not in card.detail.toPlainText()
    assert chat._answer is not None and chat._answer.document().toPlainText().startswith("Done")
    qtbot.waitUntil(lambda: chat.history.count() == 2 and chat.history.item(0).text().startswith("Add up"))
    say(qtbot, window, "What were we doing?")
    wait_window(
        qtbot,
        window,
        lambda: chat._answer is not None and "12" in chat._answer.text() and "talking" in chat._answer.text(),
    )
    assert _said(api.requests[-1])[:2] == ["Add up the budget", "What were we doing?"]
    qtbot.waitUntil(lambda: not window.desk.busy)
