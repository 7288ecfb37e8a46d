"""The summary shows how a changed text file's lines changed since the session started (#19): the
restore point's copy against the file now. No sandbox is needed: the restore point is made by the
real undo store in the app-data folder, the file is changed on disk as the guest would have, and
the window asks the real ``Desk``. No fakes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel
from pytestqt.qtbot import QtBot

from paddock.core.engine import Engine
from paddock.desk import Change, Desk, SessionSummary
from paddock.ui.window import MainWindow
from paddock.undo.store import UndoStore
from paddock.undo.textdiff import text_diff


def _point(folder: Path) -> int:
    return UndoStore(folder).make("start", "start of a session (window)", "s1").point.id


def test_the_summary_shows_a_changed_text_files_lines(qtbot: QtBot, engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "Letters"
    folder.mkdir()
    (folder / "report.md").write_text("# Report\nSales rose 8%.\nSigned, Ana\n")
    (folder / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    point = _point(folder)
    (folder / "report.md").write_text("# Report\nSales rose 19%.\nSigned, Ana\n")
    window = MainWindow(engine, Desk())
    qtbot.addWidget(window)
    changes = [Change("report.md", "changed"), Change("chart.png", "created")]
    window._on_event(SessionSummary(folder, changes, 0, tmp_path / "backup", point))
    page = window.summary
    assert page.diff.isHidden()
    page.changes.setCurrentRow(0, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    qtbot.waitUntil(lambda: not page.diff.isHidden() or page.message.text() != "", timeout=10_000)
    assert not page.diff.isHidden(), page.message.text()
    shown = page.diff.toPlainText().splitlines()
    assert "−Sales rose 8%." in shown and "+Sales rose 19%." in shown and " Signed, Ana" in shown
    assert not page.diff.title.isHidden()
    assert page.diff.text.accessibleName()
    page.changes.setCurrentRow(1, QItemSelectionModel.SelectionFlag.ClearAndSelect)  # created: nothing to compare
    assert page.diff.isHidden()


@pytest.mark.parametrize("case", ["binary", "link", "created"])
def test_what_cannot_be_compared_is_said_and_no_link_is_followed(tmp_path: Path, case: str) -> None:
    folder, outside = tmp_path / "work", tmp_path / "secret.txt"
    folder.mkdir()
    outside.write_text("a host file the guest would like to see\n")
    (folder / "f").write_bytes(b"\x00\x01binary\xff" if case == "binary" else b"text\n")
    point = _point(folder)
    if case == "link":  # the guest replaced the file with a link to a host file before the summary
        (folder / "f").unlink()
        (folder / "f").symlink_to(outside)
    said = text_diff(folder, point, "new" if case == "created" else "f")
    assert "host file" not in said and not said.startswith("---")
    expected = {"binary": "not a text file", "link": "cannot be read", "created": "not there"}[case]
    assert expected in said
