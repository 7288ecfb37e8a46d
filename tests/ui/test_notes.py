"""Saved notes in the window: the notes the assistant kept (written here through the same memory
store the ``remember`` tool writes to), where each came from, when it expires, and deleting one.
Real: the memory store in the test user's profile, the engine thread, the Desk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from paddock.assistant.memory import MemoryStore
from paddock.core.engine import Engine
from paddock.desk import Desk
from paddock.ui.window import MainWindow


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    s = MemoryStore()
    before = {m.id for m in s.list(include_expired=True)}
    yield s
    for m in s.list(include_expired=True):
        if m.id not in before:
            s.forget(m.id)


def test_notes_show_origin_and_expiry_and_can_be_deleted(
    qtbot: QtBot, engine: Engine, store: MemoryStore, tmp_path: Path
) -> None:
    kept = store.add("Reports go in Word, with a table per month", session="s1", folder=tmp_path / "Sales 2026")
    other = store.add("Use metric units", session="s2", folder=tmp_path / "Lab", ttl_days=3)
    store.share(other.id)
    window = MainWindow(engine, Desk())
    qtbot.addWidget(window)
    window.show_folders()
    qtbot.mouseClick(window.folders.findChild(type(window.chat.send_button), "notesButton"), Qt.MouseButton.LeftButton)
    dialog = window.notes
    assert dialog is not None
    qtbot.waitUntil(lambda: any(r.id == kept.id for r in dialog.rows))
    table = {dialog.table.item(i, 0).text(): i for i in range(dialog.table.rowCount())}
    row = table["Reports go in Word, with a table per month"]
    assert dialog.table.item(row, 1).text().startswith("a session on Sales 2026, ")
    assert dialog.table.item(row, 2).text() == "in 30 days"
    shared = table["Use metric units"]
    assert dialog.table.item(shared, 1).text().endswith("(used on every folder)")
    assert dialog.table.item(shared, 2).text() == "in 3 days"
    assert not dialog.delete_button.isEnabled()

    dialog.table.selectRow(row)
    assert dialog.delete_button.isEnabled()
    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text() == "The note is deleted.")
    qtbot.waitUntil(lambda: all(r.id != kept.id for r in dialog.rows))
    assert [m.id for m in store.list() if m.id in (kept.id, other.id)] == [other.id]  # gone from the store
    assert "Reports go in Word" not in store.for_prompt(tmp_path / "Sales 2026")  # and from the assistant
    dialog.close()
