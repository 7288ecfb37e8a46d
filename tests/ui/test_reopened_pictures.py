"""A reopened conversation shows its pictures again: the pictures drawn in the sandbox are kept
with the conversation (checked PNGs, bounded) and come back with it.

Real: the engine, the sandbox (QEMU, virtiofs, gRPC: the picture is made and drawn in the guest),
the conversation files and their pictures in the host's app-data folder. The fake is the model
service (the loopback Messages API server in ``tests/fakes``).
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.fakes.messages_api import text, tool
from tests.framework.desk import OpenScripted, say, wait_window

MAKE = """python3 -c 'from PIL import Image, ImageDraw
im = Image.new("RGB", (320, 200), "white"); d = ImageDraw.Draw(im)
d.rectangle((40, 60, 100, 180), fill="navy"); d.rectangle((140, 30, 200, 180), fill="orange")
im.save("chart.png")'"""


@pytest.mark.vm
def test_a_reopened_conversation_shows_its_pictures(qtbot: QtBot, scripted_window: OpenScripted) -> None:
    steps = [tool("run_command", command=MAKE), text("I drew the chart."), text("Hello again.")]
    window = scripted_window(steps, folder="Charts").window
    chat, panel = window.chat, window.chat.activity
    say(qtbot, window, "Draw the chart")
    wait_window(qtbot, window, lambda: panel.previews.count() == 1, timeout=300_000)
    drawn = panel.pictures["chart.png"].toImage()
    qtbot.waitUntil(lambda: not window.desk.busy and chat.history.count() == 1)

    # A new conversation has no pictures of its own.
    qtbot.mouseClick(chat.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not chat.cards and panel.previews.count() == 0)
    say(qtbot, window, "Just saying hello")
    wait_window(qtbot, window, lambda: chat._answer is not None and chat._answer.text() == "Hello again.")
    qtbot.waitUntil(lambda: not window.desk.busy and chat.history.count() == 2)
    assert panel.previews.count() == 0

    # Reopened, the first conversation shows its picture again: the same pixels, and it opens large.
    chat.history.setCurrentRow(1)
    chat.history.itemActivated.emit(chat.history.item(1))
    qtbot.waitUntil(lambda: panel.previews.count() == 1)
    assert panel.previews.item(0).text() == "chart.png"
    assert panel.pictures["chart.png"].toImage() == drawn
    panel.previews.itemClicked.emit(panel.previews.item(0))
    assert panel.large is not None and panel.large.isVisible()
    panel.large.close()
