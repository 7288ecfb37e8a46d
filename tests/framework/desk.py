"""Driving the window the way a person does (pytest-qt on Qt's offscreen platform): choose and
trust a folder, wait for the sandbox, type a message and send it. A timeout says what the window
showed instead.

``scripted_window`` (a fixture; ``tests/ui/conftest.py`` brings it in) is the usual start of a
window test: a window whose model is the scripted Messages API fake, with a trusted folder open and
its sandbox ready."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from paddock.core.engine import Engine
from paddock.desk.desk import Desk, SandboxState
from paddock.ui.window import MainWindow
from paddock.vm import GuestImage
from tests.fakes.loopback import Step
from tests.fakes.messages_api import MessagesAPI

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


@dataclass
class ScriptedWindow:
    window: MainWindow
    api: MessagesAPI  # the model service's fake: what it was sent is in ``api.requests``
    folder: Path  # open and trusted, its sandbox ready


OpenScripted = Callable[..., ScriptedWindow]


@pytest.fixture
def scripted_window(
    qtbot: QtBot, engine: Engine, guest_image: GuestImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OpenScripted]:
    """``scripted_window(steps, folder="work", files={name: text})``: a window whose model is the
    loopback Messages API fake (``tests.fakes.messages_api``) answering with ``steps`` in turn (a
    throwaway key in ``ANTHROPIC_API_KEY``, the fake's address in ``ANTHROPIC_BASE_URL``), with the
    folder ``tmp_path / folder`` (holding ``files``) chosen, trusted and open, its sandbox ready.
    After the test the window is closed (its session finished, its woken sandbox stopped), then the
    fake. Everything else is real: the engine, the desk, the sandbox."""
    with contextlib.ExitStack() as stack:

        def open_scripted(
            steps: Sequence[Step], *, folder: str = "work", files: Mapping[str, str] | None = None
        ) -> ScriptedWindow:
            path = tmp_path / folder
            path.mkdir()
            for name, content in (files or {}).items():
                (path / name).write_text(content)
            monkeypatch.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(8)}")
            api = stack.enter_context(MessagesAPI(steps))
            monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
            window = open_window(qtbot, engine)
            stack.callback(window.close)  # before the fake stops: the session ends first
            window.show_folders()
            open_trusted(qtbot, window, path)
            return ScriptedWindow(window, api, path)

        yield open_scripted
