"""The summary's view of how a changed text file's lines changed (``Desk.rewind.file_diff``): the lines
that went marked −, the new ones +, a little context; or the sentence saying why there is none."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout, QWidget

TITLE = "How its text changed (lines with − were there before, lines with + are new):"


class DiffView(QWidget):
    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel(TITLE)
        self.title.setObjectName("diffTitle")
        layout.addWidget(self.title)
        self.text = QPlainTextEdit()
        self.text.setObjectName("fileDiff")
        self.text.setAccessibleName("How the selected file's text changed")
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout.addWidget(self.text)
        self.setVisible(False)

    def show_diff(self, diff: str) -> None:
        lines = diff.splitlines()
        unified = lines[:2] and lines[0].startswith("--- ") and lines[1].startswith("+++ ")
        if unified:
            lines = [("−" + ln[1:] if ln.startswith("-") else ln) for ln in lines[2:] if not ln.startswith("@@")]
        self.title.setVisible(bool(unified))
        self.text.setPlainText("\n".join(lines))
        self.setVisible(True)

    def toPlainText(self) -> str:
        return self.text.toPlainText()
