"""A desktop notification when a long task ends while the window is in the background.

Real: the D-Bus session bus of the test (dbus-run-session), the engine thread. The fake is the
desktop's notification service (no desktop runs here): a small server that takes the well-known
name org.freedesktop.Notifications on that bus and records each Notify call. The assistant's
events are fed to the window as the bridge delivers them.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jeepney import HeaderFields, MessageType, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from paddock.core.engine import Engine
from paddock.desk import Desk, Finished
from paddock.llm import Usage
from paddock.ui.window import MainWindow


@pytest.fixture
def notifications() -> Iterator[list[tuple[Any, ...]]]:
    got: list[tuple[Any, ...]] = []
    stop = threading.Event()
    conn = open_dbus_connection(bus="SESSION")
    [owner] = conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.Notifications", 4)).body
    if owner != 1:
        conn.close()
        pytest.fail("another notification service owns the name on the test's session bus")

    def serve() -> None:
        while not stop.is_set():
            try:
                msg = conn.receive(timeout=0.2)
            except TimeoutError:
                continue
            call = msg.header.message_type is MessageType.method_call
            if call and msg.header.fields.get(HeaderFields.member) == "Notify":
                got.append(tuple(msg.body))
                conn.send(new_method_return(msg, "u", (len(got),)))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield got
    stop.set()
    thread.join(5)
    conn.close()


def test_a_long_task_that_ends_unseen_is_notified(
    qtbot: QtBot, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notifications: list[Any]
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(8)}")
    window = MainWindow(engine, Desk())
    qtbot.addWidget(window)
    window.show()
    window.notify_after_s = 0.2
    window._sent_at = time.monotonic()

    # Looked at: no notification.
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.wait(300)
    window._on_event(Finished("done", Usage(1, 1), 1))
    qtbot.wait(500)
    assert notifications == []

    # In the background (another window has the focus): the desktop is told.
    other = QWidget()
    qtbot.addWidget(other)
    other.show()
    other.activateWindow()
    qtbot.waitUntil(lambda: not window.isActiveWindow())
    window._on_event(Finished("done", Usage(1, 1), 1))
    qtbot.waitUntil(lambda: len(notifications) == 1, timeout=10_000)
    app, _, _, title, body, *_ = notifications[0]
    assert app == "Paddock" and title == "Paddock" and body.startswith("The assistant has finished")

    # A short task in the background: no notification.
    window.notify_after_s = 3600
    window._on_event(Finished("done", Usage(1, 1), 1))
    qtbot.wait(500)
    assert len(notifications) == 1
