"""A card per tool call: what was done, in plain words, and to which file; while it runs, the time
so far and the last lines of its output; under Details the command, its output and its timing."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPlainTextEdit, QVBoxLayout

from paddock.desk import card_input, card_output, card_title, took
from paddock.ui import theme
from paddock.ui.pages import _button, _label

TAIL_CHARS = 4000  # of live output kept per card
TAIL_LINES = 3  # shown under a running card's title


class ToolCard(QFrame):
    def __init__(self, name: str, args: dict[str, Any]) -> None:
        super().__init__()
        self.setObjectName("toolCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name, self.args = name, args
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        row = QHBoxLayout()
        row.setSpacing(10)
        self.status = _label("", "toolStatus", wrap=False)
        theme.set_icon(self.status, "mdi6.progress-clock", "muted")
        self.status.setAccessibleName("Working")
        row.addWidget(self.status)
        self.summary = _label(card_title(name, args, running=True), "toolSummary")
        row.addWidget(self.summary, 1)
        self.elapsed = _label("", "toolElapsed", wrap=False)
        row.addWidget(self.elapsed)
        self.toggle = _button("Details", "toolToggle", self._toggle)
        self.toggle.setCheckable(True)
        self.toggle.setAccessibleDescription("Show the command, its output and how long it took")
        row.addWidget(self.toggle)
        layout.addLayout(row)
        self.tail = _label("", "toolTail")
        self.tail.setAccessibleName("Latest output")
        self.tail.hide()
        layout.addWidget(self.tail)
        self.detail = QPlainTextEdit()
        self.detail.setObjectName("toolDetail")
        self.detail.setAccessibleName("Details")
        self.detail.setReadOnly(True)
        self.detail.setPlainText(card_input(name, args))
        self.detail.setMaximumHeight(180)
        self.detail.hide()
        layout.addWidget(self.detail)
        self.started = time.monotonic()
        self.output = ""
        self.running = True
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.timer.start(1000)

    def _toggle(self) -> None:
        self.detail.setVisible(self.toggle.isChecked())
        theme.set_icon(self.toggle, "mdi6.chevron-up" if self.toggle.isChecked() else "mdi6.chevron-down", "accent")

    def _tick(self) -> None:
        self.elapsed.setText(took(time.monotonic() - self.started))

    def add_output(self, text: str) -> None:
        """More of the running command's output (guest output: shown as plain text only)."""
        if not self.running:
            return
        self.output = (self.output + text)[-TAIL_CHARS:]
        lines = [line for line in self.output.splitlines() if line.strip()][-TAIL_LINES:]
        self.tail.setText("\n".join(line[:200] for line in lines))
        self.tail.setVisible(bool(lines))

    def finish(self, ok: bool, output: str, duration_s: float) -> None:
        self.running = False
        self.timer.stop()
        self.tail.hide()
        theme.set_icon(self.status, "mdi6.check-circle" if ok else "mdi6.alert-circle", "success" if ok else "danger")
        self.status.setAccessibleName("Done" if ok else "Did not work")
        self.summary.setText(card_title(self.name, self.args, running=False, ok=ok))
        timing = f"\n\nTook {took(duration_s)}." if duration_s >= 0 else ""  # not known for a reopened one
        self.elapsed.setText(took(duration_s) if duration_s >= 0 else "")
        self.detail.appendPlainText(f"\n{card_output(self.name, output)}{timing}")
