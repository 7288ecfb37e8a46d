"""The window's one look and its plain words (issue #34): a light and a dark palette chosen by the
system's colour scheme, one style sheet, icons from one set re-tinted when the scheme changes, the
folder by its name (the path on hover), a window that still reads at 1280 × 800, Settings in
sentences, the activity record as a table with filters and export, and *Copy details for support*.

Real widgets offscreen, the real Desk and engine thread, policy, the keychain and the audit rows
the desk makes from records; no VM, no model.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QPushButton
from pytestqt.qtbot import QtBot

from paddock.core.engine import Engine
from paddock.desk import Desk
from paddock.desk.words import audit_rows, policy_sentences
from paddock.policy import EffectivePolicy
from paddock.policy.schema import EgressGrant
from paddock.ui import theme
from paddock.ui.bridge import Bridge
from paddock.ui.settings import SettingsDialog
from paddock.ui.window import MainWindow


@pytest.fixture
def themed(qapp: QApplication) -> Iterator[QApplication]:
    """The app's look, put back as it was after the test (other tests draw with the plain palette)."""
    palette, sheet, style = qapp.palette(), qapp.styleSheet(), qapp.style().name()
    yield qapp
    theme.apply(qapp, Qt.ColorScheme.Light)
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setStyle(style)


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The window's calls to the engine go nowhere: no host check, no sandbox made in the background."""
    monkeypatch.setattr(Bridge, "call", lambda self, coro, *a, **k: coro.close())  # never started


def _window(qtbot: QtBot, engine: Engine) -> MainWindow:
    window = MainWindow(engine, Desk())
    qtbot.addWidget(window)
    return window


def _dialog(qtbot: QtBot, engine: Engine) -> Iterator[SettingsDialog]:
    bridge = Bridge(engine, Desk())
    dialog = SettingsDialog(bridge)
    qtbot.addWidget(dialog)
    yield dialog
    qtbot.waitUntil(lambda: bridge.idle, timeout=60_000)


@pytest.fixture
def settings(qtbot: QtBot, engine: Engine) -> Iterator[SettingsDialog]:
    yield from _dialog(qtbot, engine)


def _tint(button: QPushButton) -> float:
    """How light the icon's drawn pixels are (0 dark … 1 light)."""
    image = button.icon().pixmap(24, 24).toImage()
    seen = [
        QColor(image.pixel(x, y))
        for x in range(24)
        for y in range(24)
        if QColor.fromRgba(image.pixel(x, y)).alpha() > 200
    ]
    assert seen, "the icon draws nothing"
    return sum(c.lightnessF() for c in seen) / len(seen)


def test_the_scheme_chooses_the_palette_and_icons_follow_it(
    qtbot: QtBot, engine: Engine, themed: QApplication, quiet: None
) -> None:
    assert theme.apply(themed, Qt.ColorScheme.Dark) == Qt.ColorScheme.Dark
    window = _window(qtbot, engine)
    assert themed.palette().color(QPalette.ColorRole.Window).lightnessF() < 0.2
    assert themed.palette().color(QPalette.ColorRole.Text).lightnessF() > 0.8
    assert "#userMessage" in themed.styleSheet() and "palette(highlight)" in themed.styleSheet()
    settings = window.chat.findChild(QPushButton, "chatSettings")
    assert settings is not None and not settings.icon().isNull()
    assert _tint(settings) > 0.6  # a light icon on a dark window
    theme.apply(themed, Qt.ColorScheme.Light)  # the system turned light: the same button, re-tinted
    assert themed.palette().color(QPalette.ColorRole.Window).lightnessF() > 0.9
    assert _tint(settings) < 0.4


def test_with_no_scheme_given_the_systems_is_followed(themed: QApplication) -> None:
    chosen = theme.apply(themed)
    assert chosen == QGuiApplication.styleHints().colorScheme()
    assert theme.current() == chosen


def test_every_main_button_carries_an_icon_of_the_set(
    qtbot: QtBot, engine: Engine, themed: QApplication, quiet: None
) -> None:
    theme.apply(themed, Qt.ColorScheme.Light)
    window = _window(qtbot, engine)
    named = [b for b in window.findChildren(QPushButton) if b.objectName() in theme.ICONS]
    assert len(named) >= 15
    assert all(not b.icon().isNull() for b in named), [b.objectName() for b in named if b.icon().isNull()]


def test_the_folder_is_shown_by_its_name_with_the_path_on_hover(
    qtbot: QtBot, engine: Engine, tmp_path: Path, quiet: None
) -> None:
    window = _window(qtbot, engine)
    folder = tmp_path / "Documents" / "Sales 2026"
    window._open(folder)  # no session is opened (quiet): only the words
    assert window.chat.folder_label.text() == "Sales 2026"
    assert str(folder.parent) in window.chat.folder_label.toolTip()
    assert window.windowTitle() == "Sales 2026 — Paddock"
    assert str(tmp_path) not in window.chat.folder_label.text() + window.windowTitle()


def test_the_window_reads_at_1280_by_800(
    qtbot: QtBot, engine: Engine, themed: QApplication, tmp_path: Path, quiet: None
) -> None:
    theme.apply(themed, Qt.ColorScheme.Light)
    window = _window(qtbot, engine)
    window.chat.reset(tmp_path / "Sales 2026")
    window.stack.setCurrentWidget(window.chat)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 800
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    for widget in (window.chat.input, window.chat.send_button, window.chat.finish_button, window.chat.activity):
        top_left = widget.mapTo(window, widget.rect().topLeft())
        bottom_right = widget.mapTo(window, widget.rect().bottomRight())
        assert widget.isVisible() and window.rect().contains(top_left) and window.rect().contains(bottom_right)
    assert window.chat.scroller.width() > 560  # the conversation keeps most of the width


def test_settings_say_what_the_policy_allows_in_sentences() -> None:
    policy = EffectivePolicy(
        grants=[
            EgressGrant(id="rates", host="api.example.com"),
            EgressGrant(id="upload", host="files.example.com", methods=["GET", "POST"]),
        ],
        allow_asking=True,
        sources={"grants": "managed", "allow_asking": "user"},
    )
    rows = dict(policy_sentences(policy))
    sites = (
        "Your organisation lets the assistant reach: api.example.com (read only), files.example.com (read and send)."
    )
    assert rows[sites] == "your organisation"
    assert rows["Before it reaches any other site, it asks you first."] == "you"
    assert all("_" not in sentence for sentence in rows)  # no policy key
    assert dict(policy_sentences(EffectivePolicy()))["The assistant cannot reach the internet."] == "Paddock"


RECORDS = [
    {"time_unix": 1_764_770_000 + i, "kind": kind, "session_id": "ab" * 16, "attributes": attrs}
    for i, (kind, attrs) in enumerate(
        [
            ("session.started", {"paddock.folder": "Sales"}),
            ("guest.file.written", {"file.path": "report.docx", "file.size": 10}),
            ("egress.decision", {"paddock.egress.allowed": False, "server.address": "pastebin.com", "url.path": "/x"}),
            ("guest.file.written", {"file.path": '=HYPERLINK("http://evil")', "file.size": 1}),
        ]
    )
]


def test_the_activity_record_is_a_table_with_filters_and_export(
    qtbot: QtBot, settings: SettingsDialog, tmp_path: Path
) -> None:
    dialog = settings
    qtbot.waitUntil(lambda: settings.bridge.idle)  # its own rows (none here) first, then the test's
    dialog._show_audit(audit_rows(RECORDS))
    assert dialog.audit_view.rowCount() == 4
    assert dialog.audit_view.item(0, 1).text() == "A file was written"  # newest first, in words
    assert dialog.audit_view.horizontalHeaderItem(1).text() == "What happened"
    dialog.audit_group.setCurrentText("Internet")
    assert [dialog.audit_view.item(i, 2).text() for i in range(dialog.audit_view.rowCount())] == [
        "refused: pastebin.com/x"
    ]
    dialog.audit_group.setCurrentText("Everything")
    dialog.audit_search.setText("REPORT")
    assert dialog.audit_view.rowCount() == 1 and dialog.audit_view.item(0, 2).text() == "report.docx"
    dialog.audit_search.clear()
    out = tmp_path / "activity.csv"
    dialog.export_audit(out)
    qtbot.waitUntil(lambda: "Saved 4 entries" in dialog.audit_message.text())
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["when", "group", "what happened"] and len(rows) == 5
    assert rows[1][3].startswith("'=HYPERLINK")  # a spreadsheet shows it as text, never runs it
    assert '"kind": "guest.file.written"' in rows[1][5]  # the record as written, for support


def test_copy_details_for_support_saves_and_copies_a_redacted_file(
    qtbot: QtBot, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(tmp_path / "data"))
    key = f"test-{secrets.token_hex(12)}"  # generated per test; never a real key
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    dialogs = _dialog(qtbot, engine)
    dialog = next(dialogs)
    qtbot.mouseClick(dialog.support_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.support_message.text().startswith("Copied"), timeout=60_000)
    [saved] = (tmp_path / "data" / "support").glob("paddock-support-*.txt")
    copied = QGuiApplication.clipboard().text()
    assert copied == saved.read_text(encoding="utf-8") and "Paddock support details" in copied
    assert key not in copied and str(saved) in dialog.support_message.text()
    next(dialogs, None)
