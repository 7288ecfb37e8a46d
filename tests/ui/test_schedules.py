"""The schedule view in the window: the folder page's Schedules button opens it; it lists the
schedules with their last result and history, adds one (with its systemd timer files) and removes
it, and says plainly when there is no user systemd.

Real: the window, the engine thread, the schedule store, the unit files, policy. No VM and no
model: nothing is run here (a run's own process is tested in tests/schedule).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from paddock.core.engine import Engine
from paddock.desk import WINDOW_ONLY, Desk, ScheduleRun
from paddock.schedule import ScheduleStore
from paddock.ui.schedules import ScheduleDialog
from paddock.ui.window import MainWindow
from tests.fakes.messages_api import MessagesAPI, text, tool


@pytest.fixture
def window(qtbot: QtBot, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-not-used")  # past the first-run key page
    win = MainWindow(engine, Desk())
    qtbot.addWidget(win)
    win.show()
    win.show_folders()
    return win


def _dialog(qtbot: QtBot, window: MainWindow) -> ScheduleDialog:
    qtbot.mouseClick(window.folders.findChild(type(window.chat.send_button), "schedulesButton"), _left())
    dialog = window.schedule_view
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.mode.text() != "", timeout=30_000)
    return dialog


def _left():  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_the_view_lists_a_schedule_with_its_history(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    store = ScheduleStore()
    s = store.add(folder=str(tmp_path), when="every monday 09:00", on_calendar="Mon *-*-* 09:00:00",
                  task="Summarise the invoices", created=datetime.now().astimezone())  # fmt: skip
    t = datetime.now().astimezone() - timedelta(days=7)
    store.record(s.id, ScheduleRun(started=t, finished=t, outcome="failed", why="the model service said no"))
    store.record(s.id, ScheduleRun(started=t, finished=t, outcome="finished", summary="1 created (summary.xlsx)",
                                   changes=["created summary.xlsx"]))  # fmt: skip
    dialog = _dialog(qtbot, window)
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1 and dialog.history.count() == 2)
    assert dialog.table.item(0, 1).text() == "Summarise the invoices"
    assert dialog.table.item(0, 3).text() == "finished: 1 created (summary.xlsx)"
    newest, oldest = dialog.history.item(0).text(), dialog.history.item(1).text()
    assert "finished" in newest and "created summary.xlsx" in newest
    assert "failed: the model service said no" in oldest


def test_add_and_remove_from_the_view(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    dialog = _dialog(qtbot, window)
    assert dialog.mode.text() == WINDOW_ONLY  # there is no user systemd in the tests
    dialog.folder_edit.setText(str(folder))
    dialog.when_edit.setCurrentText("every 5 minutes")
    dialog.task_edit.setText("Tidy the downloads")
    qtbot.mouseClick(dialog.findChild(type(dialog.run_button), "scheduleAdd"), _left())
    qtbot.waitUntil(lambda: "does not understand" in dialog.message.text())
    assert dialog.table.rowCount() == 0

    dialog.when_edit.setCurrentText("every weekday 07:45")
    qtbot.mouseClick(dialog.findChild(type(dialog.run_button), "scheduleAdd"), _left())
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1)
    assert "added" in dialog.message.text() and dialog.table.item(0, 0).text() == "every weekday 07:45"
    (schedule,) = ScheduleStore().all()
    units = tmp_path / "config" / "systemd" / "user"
    assert (units / f"paddock-schedule-{schedule.id}.timer").exists()

    qtbot.mouseClick(dialog.remove_button, _left())
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 0)
    assert ScheduleStore().all() == [] and not (units / f"paddock-schedule-{schedule.id}.timer").exists()


@pytest.mark.vm
def test_run_now_runs_it_in_its_own_process_once_and_shows_the_result(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run now starts ``paddock schedule run ID`` (the real VM; the model is the loopback fake,
    ``tests.fakes.messages_api``); pressing it again while that runs is refused."""
    folder = tmp_path / "work"
    folder.mkdir()
    store = ScheduleStore()
    s = store.add(folder=str(folder), when="every day 08:00", on_calendar="*-*-* 08:00:00",
                  task="Write now.txt", created=datetime.now().astimezone())  # fmt: skip
    with MessagesAPI([tool("run_command", command="echo now > now.txt"), text("Wrote now.txt.")]) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)  # the run's process inherits it
        dialog = _dialog(qtbot, window)
        qtbot.waitUntil(lambda: dialog.table.rowCount() == 1)
        qtbot.mouseClick(dialog.run_button, _left())
        qtbot.waitUntil(lambda: dialog.message.text().startswith("Started"))
        qtbot.mouseClick(dialog.run_button, _left())
        qtbot.waitUntil(lambda: "never run twice at once" in dialog.message.text())
        qtbot.waitUntil(lambda: len(store.history(s.id)) == 1, timeout=300_000)
    qtbot.mouseClick(dialog.findChild(type(dialog.run_button), "scheduleRefresh"), _left())
    qtbot.waitUntil(lambda: dialog.history.count() == 1)
    assert (folder / "now.txt").read_text() == "now\n"
    assert dialog.table.item(0, 3).text() == "finished: 1 created (now.txt)"
    assert "Wrote now.txt." in dialog.history.item(0).text()
