"""Every string a person can see in the window's widgets, for the plain-words and accessibility
tests: texts, tooltips, accessible names, placeholders, window titles, list/table/tab/combo items."""

from __future__ import annotations

import re
from collections.abc import Iterable

from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QTableWidget,
    QTabWidget,
    QTextEdit,
    QWidget,
)

NOT_SCANNED = {"auditView"}  # the activity record: its "About" column quotes what the sandbox ran and wrote
TAGS = re.compile(r"<[^>]+>")


def _texts(w: QWidget) -> Iterable[str]:
    yield w.windowTitle() if w.isWindow() else ""
    yield w.toolTip()
    yield w.accessibleName()
    yield w.accessibleDescription()
    yield w.statusTip()
    if isinstance(w, QLabel):
        yield TAGS.sub(" ", w.text())
    elif isinstance(w, QAbstractButton):
        yield w.text()
    elif isinstance(w, QLineEdit):
        yield w.placeholderText()
    elif isinstance(w, QPlainTextEdit | QTextEdit):
        yield w.toPlainText()
        yield w.placeholderText()
    elif isinstance(w, QListWidget):
        yield from (w.item(i).text() for i in range(w.count()))
    elif isinstance(w, QTableWidget):
        for r in range(w.rowCount()):
            yield from (w.item(r, c).text() for c in range(w.columnCount()) if w.item(r, c) is not None)
        for c in range(w.columnCount()):
            header = w.horizontalHeaderItem(c)
            yield header.text() if header is not None else ""
    elif isinstance(w, QTabWidget):
        yield from (w.tabText(i) for i in range(w.count()))
    elif isinstance(w, QComboBox):
        yield from (w.itemText(i) for i in range(w.count()))
    elif isinstance(w, QGroupBox):
        yield w.title()


def visible_strings() -> dict[str, str]:
    """{text: the widget's object name} for every widget the application has now."""
    out: dict[str, str] = {}
    for w in QApplication.allWidgets():
        if w.objectName() in NOT_SCANNED or any(p.objectName() in NOT_SCANNED for p in _parents(w)):
            continue
        for text in _texts(w):
            if text and text.strip():
                out.setdefault(text, w.objectName() or type(w).__name__)
    return out


def _parents(w: QWidget) -> Iterable[QWidget]:
    p = w.parentWidget()
    while p is not None:
        yield p
        p = p.parentWidget()
