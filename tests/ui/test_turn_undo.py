""" "Undo this" under each turn of the conversation (#19, #20): the folder goes back as it was before
that message, through the session's restore points (audited, itself undoable); a later turn's
button is spent once an earlier turn is undone.

Real: the engine, the sandbox (QEMU, virtiofs, gRPC: the commands run in the guest), the restore
points in the host's app-data folder. The fake is the model service (the loopback Messages API
server in ``tests/fakes``), scripted to run one command per message.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.fakes.messages_api import text, tool
from tests.framework.desk import OpenScripted, say, wait_window


@pytest.mark.vm
def test_undo_this_puts_the_folder_back_as_before_that_message(qtbot: QtBot, scripted_window: OpenScripted) -> None:
    steps = [
        tool("run_command", command="echo first > a.txt"),
        text("Wrote a.txt."),
        tool("run_command", command="echo second > a.txt && echo new > b.txt && rm kept.txt"),
        text("Changed a.txt, wrote b.txt, removed kept.txt."),
        tool("run_command", command="cat a.txt"),
        text("It says first."),
    ]
    opened = scripted_window(steps, folder="Letters", files={"kept.txt": "there before\n"})
    window, api, folder = opened.window, opened.api, opened.folder
    chat = window.chat
    for message, count in (("Write a", 1), ("Change things", 2)):
        say(qtbot, window, message)
        wait_window(qtbot, window, lambda n=count: len(chat.turn_undos) == n)  # type: ignore[misc]
    first, second = sorted(chat.turn_undos)
    assert (folder / "a.txt").read_text() == "second\n" and not (folder / "kept.txt").exists()
    button = chat.turn_undos[second]
    assert button.accessibleName() == "Undo what the assistant did for this message"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    wait_window(qtbot, window, lambda: not button.isEnabled(), 60_000)
    assert (folder / "a.txt").read_text() == "first\n"
    assert not (folder / "b.txt").exists() and (folder / "kept.txt").read_text() == "there before\n"
    assert chat.turn_undos[first].isEnabled()
    say(qtbot, window, "What does a.txt say?")  # the sandbox sees the folder as it is now
    wait_window(qtbot, window, lambda: len(chat.turn_undos) == 3)
    assert "What it printed:\nfirst" in list(chat.cards.values())[-1].detail.toPlainText()
    qtbot.mouseClick(chat.turn_undos[first], Qt.MouseButton.LeftButton)
    wait_window(qtbot, window, lambda: not chat.turn_undos[first].isEnabled(), 60_000)
    assert not (folder / "a.txt").exists() and (folder / "kept.txt").exists()
    assert len(api.requests) == 6
