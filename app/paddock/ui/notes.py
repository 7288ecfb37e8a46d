"""Saved notes: what the assistant kept between sessions, where each came from, when it expires;
the person deletes any of them. The notes come from ``Desk.notes`` through the bridge."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from paddock.desk import NoteRow
from paddock.ui.bridge import Bridge
from paddock.ui.pages import _button, _label


class NotesDialog(QDialog):
    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notesDialog")
        self.setWindowTitle("Notes the assistant kept")
        self.resize(760, 380)
        self.bridge = bridge
        layout = QVBoxLayout(self)
        layout.addWidget(
            _label(
                "The assistant can keep short notes between sessions, such as how you like your reports. "
                "It reads them at the start of every session on the same folder. Delete any you don't want.",
                "notesIntro",
            )
        )
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("notesTable")
        self.table.setAccessibleName("Saved notes")
        self.table.setHorizontalHeaderLabels(["Note", "Where it came from", "Expires"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.delete_button = _button("Delete the selected note", "deleteNote", self._delete)
        self.delete_button.setEnabled(False)
        row.addWidget(self.delete_button)
        self.message = _label("", "notesMessage")
        row.addWidget(self.message, 1)
        layout.addLayout(row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the notes")
        layout.addWidget(buttons)
        self.table.itemSelectionChanged.connect(lambda: self.delete_button.setEnabled(bool(self.table.selectedItems())))
        self.rows: list[NoteRow] = []
        self.refresh()

    def refresh(self) -> None:
        self.bridge.call(self.bridge.desk.notes.list(), self._show, self.message.setText)

    def _show(self, rows: list[NoteRow]) -> None:
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, note in enumerate(rows):
            scope = " (used on every folder)" if note.everywhere else ""
            for j, text in enumerate((note.text, note.came_from + scope, note.expires)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, note.id)
                self.table.setItem(i, j, item)
        self.table.resizeRowsToContents()
        if not rows:
            self.message.setText("The assistant has not kept any notes.")
        self.delete_button.setEnabled(bool(self.table.selectedItems()))

    def _delete(self) -> None:
        items = self.table.selectedItems()
        if not items:
            return
        note_id = str(items[0].data(Qt.ItemDataRole.UserRole))

        def done(gone: bool) -> None:
            self.message.setText("The note is deleted." if gone else "That note was already gone.")
            self.refresh()

        self.bridge.call(self.bridge.desk.notes.forget(note_id), done, self.message.setText)
