""" "Undo this" under each turn of the conversation (#19, #20): the folder goes back as it was before
that message, through the session's restore points (audited, itself undoable); a later turn's
button is spent once an earlier turn is undone.

Real: the engine, the sandbox (QEMU, virtiofs, gRPC: the commands run in the guest), the restore
points in the host's app-data folder. The fake is the model service (the loopback Messages API
server in ``tests/fakes``), scripted to run one command per message.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from paddock.core.engine import Engine
from paddock.desk import Desk
from paddock.ui.window import MainWindow
from tests.fakes.messages_api import MessagesAPI, text, tool
from tests.ui.test_window import _open_trusted, _say, _wait


@pytest.mark.vm
def test_undo_this_puts_the_folder_back_as_before_that_message(
    qtbot: QtBot, engine: Engine, guest_image: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "Letters"
    folder.mkdir()
    (folder / "kept.txt").write_text("there before\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(8)}")
    steps = [
        tool("run_command", command="echo first > a.txt"),
        text("Wrote a.txt."),
        tool("run_command", command="echo second > a.txt && echo new > b.txt && rm kept.txt"),
        text("Changed a.txt, wrote b.txt, removed kept.txt."),
        tool("run_command", command="cat a.txt"),
        text("It says first."),
    ]
    with MessagesAPI(steps) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        window = MainWindow(engine, Desk())
        qtbot.addWidget(window)
        window.show()
        window.show_folders()
        _open_trusted(qtbot, window, folder)
        chat = window.chat
        for message, count in (("Write a", 1), ("Change things", 2)):
            _say(qtbot, window, message)
            _wait(qtbot, window, lambda n=count: len(chat.turn_undos) == n)  # type: ignore[misc]
        first, second = sorted(chat.turn_undos)
        assert (folder / "a.txt").read_text() == "second\n" and not (folder / "kept.txt").exists()
        button = chat.turn_undos[second]
        assert button.accessibleName() == "Undo what the assistant did for this message"
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        _wait(qtbot, window, lambda: not button.isEnabled(), 60_000)
        assert (folder / "a.txt").read_text() == "first\n"
        assert not (folder / "b.txt").exists() and (folder / "kept.txt").read_text() == "there before\n"
        assert chat.turn_undos[first].isEnabled()
        _say(qtbot, window, "What does a.txt say?")  # the sandbox sees the folder as it is now
        _wait(qtbot, window, lambda: len(chat.turn_undos) == 3)
        assert "What it printed:\nfirst" in list(chat.cards.values())[-1].detail.toPlainText()
        qtbot.mouseClick(chat.turn_undos[first], Qt.MouseButton.LeftButton)
        _wait(qtbot, window, lambda: not chat.turn_undos[first].isEnabled(), 60_000)
        assert not (folder / "a.txt").exists() and (folder / "kept.txt").exists()
        assert len(api.requests) == 6
        window.close()
