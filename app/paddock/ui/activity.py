"""The activity panel: programs running in the sandbox now and files being written or written just
now by any command (the guest agent watches the folder), from the guest's live events
(``paddock.desk.Activity``). Guest-provided names are shown as plain text."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QFrame, QListWidget, QListWidgetItem, QVBoxLayout

from paddock.desk import Activity, Preview
from paddock.ui.pages import _label
from paddock.ui.previews import PreviewList
from paddock.ui.tips import plain_tip

MAX_RUNNING = 50
MAX_FILES = 30


class ActivityPanel(QFrame):
    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("activityPanel")
        self.setAccessibleName("What the sandbox is doing")
        self.setMaximumWidth(260)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(_label("Running now", "runningTitle"))
        self.running = QListWidget()
        self.running.setObjectName("runningList")
        self.running.setAccessibleName("Programs running in the sandbox now")
        self.running.setWordWrap(True)
        self.running.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        column.addWidget(self.running, 1)
        self.idle = _label("Nothing is running.", "runningIdle")
        column.addWidget(self.idle)
        self.running.hide()
        column.addWidget(_label("Files written just now", "filesTitle"))
        self.files = QListWidget()
        self.files.setObjectName("filesList")
        self.files.setAccessibleName("Files written just now")
        self.files.setWordWrap(True)
        self.files.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        column.addWidget(self.files, 2)
        column.addWidget(_label("Pictures of the files made", "previewsTitle"))
        self.previews = PreviewList("previewList", "Pictures of the files the assistant made")
        column.addWidget(self.previews, 3)
        self._items: dict[str, QListWidgetItem] = {}
        self._files: dict[str, QListWidgetItem] = {}

    def add_previews(self, previews: list[Preview]) -> None:
        """Pictures drawn in the sandbox (already checked: PNG, bounded size); newest first."""
        self.previews.add_previews(previews)

    def show_pictures(self, previews: list[Preview]) -> None:
        """Only these pictures (a conversation's kept ones, newest first)."""
        self.previews.clear_pictures()
        self.previews.add_previews(list(reversed(previews)))

    @property
    def pictures(self) -> dict[str, QPixmap]:
        return self.previews.pictures

    @property
    def large(self) -> QDialog | None:
        return self.previews.large

    def clear(self) -> None:
        self.previews.clear_pictures()
        self.running.clear()
        self.files.clear()
        self._items.clear()
        self._files.clear()
        self.idle.show()
        self.running.hide()

    def add(self, ev: Activity) -> None:
        if ev.kind == "started":
            item = QListWidgetItem(f"▶ {ev.text}")
            item.setToolTip(plain_tip(ev.text))
            self._items[ev.key] = item
            self.running.addItem(item)
            while len(self._items) > MAX_RUNNING:  # a guest that never reports exits cannot grow this
                oldest = next(iter(self._items))
                self.running.takeItem(self.running.row(self._items.pop(oldest)))
        elif ev.kind == "finished":
            if ev.key in self._items:
                self.running.takeItem(self.running.row(self._items.pop(ev.key)))
        else:
            when = time.strftime("%H:%M:%S", time.localtime(ev.time_unix))
            mark = {"writing": "… being written:", "written": "✎", "removed": "✗ removed:"}.get(ev.kind, "✎")
            old = self._files.pop(ev.key, None)
            if old is not None:  # one line per file: its latest state on top
                self.files.takeItem(self.files.row(old))
            item = QListWidgetItem(f"{when}  {mark} {ev.text}")
            item.setData(Qt.ItemDataRole.UserRole, ev.key)
            item.setToolTip(plain_tip(ev.text))
            self._files[ev.key] = item
            self.files.insertItem(0, item)
            while self.files.count() > MAX_FILES:
                self._files.pop(self.files.takeItem(self.files.count() - 1).data(Qt.ItemDataRole.UserRole), None)
        self.idle.setVisible(self.running.count() == 0)
        self.running.setVisible(self.running.count() > 0)  # an empty list is only "Nothing is running."
