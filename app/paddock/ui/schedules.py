"""The schedule view: a folder's recurring tasks, when each runs next, its last result and its
history; add, remove and run now. ``ScheduleClock`` runs due schedules while the window is open
where there is no user systemd. The work is in ``paddock.schedule``'s ``Schedules`` (reached through
``paddock.desk``); every call goes through the bridge to the engine thread."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from paddock.desk import SCHEDULE_EXAMPLES, WINDOW_ONLY, ScheduleRow, ScheduleRun, Schedules
from paddock.ui import theme
from paddock.ui.bridge import Bridge
from paddock.ui.tips import plain_tip

KEEPER_INTERVAL_MS = 60_000


def _run_text(run: ScheduleRun) -> str:
    lines = [run.line()]
    if run.ok and run.answer:
        lines.append("  " + run.answer.strip().splitlines()[-1][:200])
    lines += [f"  {c}" for c in run.changes[:10]]
    return "\n".join(lines)


class ScheduleDialog(QDialog):
    """A folder's schedules (every folder's, with none given)."""

    def __init__(self, bridge: Bridge, schedules: Schedules, folder: Path | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("scheduleDialog")
        self.setWindowTitle("Paddock schedules")
        self.resize(860, 560)
        self.bridge, self.schedules, self.folder = bridge, schedules, folder
        self.rows: list[ScheduleRow] = []
        layout = QVBoxLayout(self)
        where = f"Recurring tasks on {folder}" if folder else "Recurring tasks on every folder"
        layout.addWidget(QLabel(where + ". Each run is a session of its own, in a fresh sandbox."))
        self.mode = QLabel("")
        self.mode.setObjectName("scheduleMode")
        self.mode.setWordWrap(True)
        layout.addWidget(self.mode)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("scheduleTable")
        self.table.setHorizontalHeaderLabels(["When", "Task", "Next run", "Last result"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selected)
        layout.addWidget(self.table, 2)
        buttons = QHBoxLayout()
        self.run_button = self._button("Run now", "scheduleRunNow", self._run_now, buttons)
        self.remove_button = self._button("Remove", "scheduleRemove", self._remove, buttons)
        buttons.addStretch(1)
        self._button("Refresh", "scheduleRefresh", self.refresh, buttons)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("History of the selected schedule (newest first):"))
        self.history = QListWidget()
        self.history.setObjectName("scheduleHistory")
        layout.addWidget(self.history, 2)
        layout.addLayout(self._add_form())
        self.message = QLabel("")
        self.message.setObjectName("scheduleMessage")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.refresh()

    def _button(self, text: str, name: str, slot: object, row: QHBoxLayout) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.clicked.connect(slot)
        theme.button_icon(button)
        row.addWidget(button)
        return button

    def _add_form(self) -> QFormLayout:
        form = QFormLayout()
        folder_row = QHBoxLayout()
        self.folder_edit = QLineEdit(str(self.folder) if self.folder else "")
        self.folder_edit.setObjectName("scheduleFolder")
        folder_row.addWidget(self.folder_edit, 1)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        folder_row.addWidget(browse)
        form.addRow("Folder", folder_row)
        self.when_edit = QComboBox()
        self.when_edit.setObjectName("scheduleWhen")
        self.when_edit.setEditable(True)
        self.when_edit.addItems([e.strip('"') for e in SCHEDULE_EXAMPLES])
        self.when_edit.setCurrentText("every monday 09:00")
        form.addRow("When", self.when_edit)
        task_row = QHBoxLayout()
        self.task_edit = QLineEdit()
        self.task_edit.setObjectName("scheduleTask")
        self.task_edit.setPlaceholderText("e.g. Summarise the new invoices into summary.xlsx")
        task_row.addWidget(self.task_edit, 1)
        self._button("Add schedule", "scheduleAdd", self._add, task_row)
        form.addRow("Task", task_row)
        return form

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder for this schedule", self.folder_edit.text())
        if chosen:
            self.folder_edit.setText(chosen)

    # ------------------------------------------------------------------ engine calls

    def refresh(self) -> None:
        async def load() -> tuple[list[ScheduleRow], bool]:
            return self.schedules.rows(self.folder), self.schedules.systemd_live()

        self.bridge.call(load(), self._show, self.message.setText)

    def _show(self, loaded: tuple[list[ScheduleRow], bool]) -> None:
        rows, live = loaded
        keep = self._current()
        self.rows = rows
        self.mode.setText("Schedules run on time, also while this window is closed." if live else WINDOW_ONLY)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            last = "running now" if row.running else (row.last.result() if row.last else "not run yet")
            due = "due now" if row.next_due <= datetime.now() else f"{row.next_due:%a %d %b %H:%M}"
            for col, text in enumerate((row.schedule.when, row.schedule.task, due, last)):
                item = QTableWidgetItem(text)
                item.setToolTip(plain_tip(row.schedule.folder if col == 1 else text))
                self.table.setItem(i, col, item)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(2)
        ids = [r.schedule.id for r in rows]
        self.table.selectRow(ids.index(keep) if keep in ids else 0 if rows else -1)
        self._selected()

    def _current(self) -> str | None:
        index = self.table.currentRow()
        return self.rows[index].schedule.id if 0 <= index < len(self.rows) else None

    def _selected(self) -> None:
        current = self._current()
        self.run_button.setEnabled(current is not None)
        self.remove_button.setEnabled(current is not None)
        if current is None:
            self.history.clear()
            return

        async def load() -> list[ScheduleRun]:
            return self.schedules.history(current)

        def show(runs: list[ScheduleRun]) -> None:
            if self._current() == current:  # not a late answer for another row
                self.history.clear()
                self.history.addItems([_run_text(r) for r in reversed(runs)])

        self.bridge.call(load(), show)

    def _add(self) -> None:
        folder, when, task = Path(self.folder_edit.text().strip()), self.when_edit.currentText(), self.task_edit.text()

        async def add() -> str:
            return self.schedules.add(folder, when, task).message

        def added(message: str) -> None:
            self.task_edit.clear()
            self._said(message)

        self.bridge.call(add(), added, self.message.setText)

    def _said(self, message: str) -> None:
        self.message.setText(message)
        self.refresh()

    def _remove(self) -> None:
        current = self._current()
        if current is None:
            return

        async def remove() -> str:
            return f"Schedule {self.schedules.remove(current).id} removed, with its timer."

        self.bridge.call(remove(), self._said, self.message.setText)

    def _run_now(self) -> None:
        current = self._current()
        if current is None:
            return
        started = "Started; the result appears in the history when the run ends (Refresh)."
        self.bridge.call(self.schedules.start(current), lambda _: self._said(started), self.message.setText)


class ScheduleClock(QObject):
    """Where there is no systemd user manager, run due schedules every minute while the window is open."""

    def __init__(self, bridge: Bridge, schedules: Schedules) -> None:
        super().__init__()
        self.bridge, self.schedules = bridge, schedules
        self.timer = QTimer(self)
        self.timer.setInterval(KEEPER_INTERVAL_MS)
        self.timer.timeout.connect(self.tick)

    def start(self) -> None:
        async def live() -> bool:
            return self.schedules.systemd_live()

        self.bridge.call(live(), self._decided)

    def _decided(self, live: bool) -> None:
        if not live:
            self.tick()
            self.timer.start()

    def tick(self) -> None:
        self.bridge.call(self.schedules.run_due())
