"""Tooltips that show guest or model text as written."""

from __future__ import annotations

from PySide6 import QtGui


def plain_tip(text: str) -> str:
    """A tooltip that shows ``text`` as written: Qt reads a tooltip that looks like HTML as HTML
    (``<img src=…>`` would load a file), and guest or model text may look like that."""
    return QtGui.Qt.convertFromPlainText(text)
