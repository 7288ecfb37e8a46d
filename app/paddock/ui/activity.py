"""The activity panel: programs running in the sandbox now and files written just now, from the
guest's live events (``paddock.session.Activity``). Guest-provided names are shown as plain text."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QFrame, QListWidget, QListWidgetItem, QVBoxLayout

from paddock.session import Activity
from paddock.ui.pages import _label

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
        column.addWidget(self.running, 1)
        self.idle = _label("Nothing is running.", "runningIdle")
        column.addWidget(self.idle)
        column.addWidget(_label("Files written just now", "filesTitle"))
        self.files = QListWidget()
        self.files.setObjectName("filesList")
        self.files.setAccessibleName("Files written just now")
        self.files.setWordWrap(True)
        column.addWidget(self.files, 2)
        self._items: dict[str, QListWidgetItem] = {}

    def clear(self) -> None:
        self.running.clear()
        self.files.clear()
        self._items.clear()
        self.idle.show()

    def add(self, ev: Activity) -> None:
        if ev.kind == "started":
            item = QListWidgetItem(f"▶ {ev.text}")
            item.setToolTip(ev.text)
            self._items[ev.key] = item
            self.running.addItem(item)
        elif ev.kind == "finished":
            if ev.key in self._items:
                self.running.takeItem(self.running.row(self._items.pop(ev.key)))
        else:
            when = time.strftime("%H:%M:%S", time.localtime(ev.time_unix))
            mark = "✎" if ev.kind == "written" else "✗ removed:"
            self.files.insertItem(0, QListWidgetItem(f"{when}  {mark} {ev.text}"))
            while self.files.count() > MAX_FILES:
                self.files.takeItem(self.files.count() - 1)
        self.idle.setVisible(self.running.count() == 0)
