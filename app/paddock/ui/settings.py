"""Settings: the model and the model services policy allows (with each one's key); keys (status,
replace, remove, per service); cutting off every session's internet access; what the policy in
effect lets the assistant do, in sentences (read-only: admins set it); the activity record (the
audit log) as a table with filters and export; and *Copy details for support*."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from paddock.desk import AUDIT_GROUPS, AuditRow, filter_audit
from paddock.ui import theme
from paddock.ui.bridge import Bridge
from paddock.ui.tips import plain_tip


def _push(text: str, name: str, accessible: str = "") -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setAccessibleName(accessible or text)
    theme.button_icon(button)
    return button


def _words(text: str, name: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if name:
        label.setObjectName(name)
    return label


def _table(name: str, accessible: str, headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setObjectName(name)
    table.setAccessibleName(accessible)
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.setShowGrid(False)
    table.setWordWrap(True)
    table.horizontalHeader().setStretchLastSection(True)
    return table


class SettingsDialog(QDialog):
    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Paddock settings")
        self.resize(860, 560)
        self.bridge = bridge
        desk = bridge.desk
        tabs = QTabWidget()
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the settings")
        layout.addWidget(buttons)
        self.tabs = tabs
        tabs.addTab(self._model_tab(desk.model or ""), "Model")
        tabs.addTab(self._keys_tab(), "Keys")
        tabs.addTab(self._policy_tab(), "What's allowed")
        tabs.addTab(self._audit_tab(), "Activity record")
        tabs.addTab(self._support_tab(), "Help")
        self.audit: list[AuditRow] = []
        self.shown_audit: list[AuditRow] = []
        self.refresh()

    def _model_tab(self, current: str) -> QWidget:
        model = QWidget()
        ml = QVBoxLayout(model)
        ml.addWidget(_words("The model the assistant uses, from the next folder you open:"))
        self.model_edit = QLineEdit(current)
        self.model_edit.setObjectName("modelEdit")
        self.model_edit.setAccessibleName("Model")
        self.model_edit.setPlaceholderText(
            "Leave empty for the usual model. To choose one, type its name, for example openai:llama3.1"
        )
        self.model_edit.editingFinished.connect(self._set_model)
        ml.addWidget(self.model_edit)
        ml.addSpacing(8)
        ml.addWidget(_words("The model services your organisation allows (the first is the usual one):"))
        self.endpoint_table = _table(
            "endpointTable", "Model services your organisation allows", ["Service", "Where", "Models", "Key"]
        )
        ml.addWidget(self.endpoint_table, 1)
        return model

    def _keys_tab(self) -> QWidget:
        keys = QWidget()
        kl = QVBoxLayout(keys)
        self.key_status = _words("…")
        self.key_status.setObjectName("keyStatus")
        self.key_status.setWordWrap(True)
        kl.addWidget(self.key_status)
        row = QHBoxLayout()
        self.key_endpoint = QComboBox()
        self.key_endpoint.setObjectName("keyEndpoint")
        self.key_endpoint.setAccessibleName("Model service")
        self.key_endpoint.setToolTip("The model service whose key to replace or remove")
        row.addWidget(self.key_endpoint)
        self.new_key = QLineEdit()
        self.new_key.setObjectName("replaceKeyEdit")
        self.new_key.setAccessibleName("New key")
        self.new_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_key.setPlaceholderText("A new key, to replace the stored one")
        row.addWidget(self.new_key, 1)
        replace = _push("Replace key", "replaceKey")
        replace.clicked.connect(self._replace)
        row.addWidget(replace)
        kl.addLayout(row)
        remove = _push("Remove key", "removeKey")
        remove.clicked.connect(self._remove)
        kl.addWidget(remove, alignment=Qt.AlignmentFlag.AlignLeft)
        kl.addSpacing(12)
        kl.addWidget(
            _words(
                "If you think something went wrong, you can cut off the internet access of every session at "
                "once, running ones included. The next folder you open gets it again."
            )
        )
        revoke = _push("Cut off internet access now", "revokeTokens")
        revoke.clicked.connect(self._revoke)
        kl.addWidget(revoke, alignment=Qt.AlignmentFlag.AlignLeft)
        self.key_message = _words("")
        self.key_message.setObjectName("keysMessage")
        kl.addWidget(self.key_message)
        kl.addStretch(1)
        return keys

    def _policy_tab(self) -> QWidget:
        policy = QWidget()
        pl = QVBoxLayout(policy)
        pl.addWidget(_words("What the assistant may do here. What your organisation set cannot be changed here."))
        self.policy_table = _table("policyTable", "What the assistant may do", ["", "Set by"])
        self.policy_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.policy_table.horizontalHeader().setStretchLastSection(False)
        self.policy_table.horizontalHeader().setVisible(False)
        pl.addWidget(self.policy_table)
        return policy

    def _audit_tab(self) -> QWidget:
        audit = QWidget()
        al = QVBoxLayout(audit)
        al.addWidget(
            _words("Everything the assistant and the sandbox did, newest first. Your organisation may keep a copy.")
        )
        row = QHBoxLayout()
        self.audit_group = QComboBox()
        self.audit_group.setObjectName("auditGroup")
        self.audit_group.setAccessibleName("Show")
        self.audit_group.addItems(list(AUDIT_GROUPS))
        self.audit_group.currentTextChanged.connect(lambda _t: self._filter_audit())
        row.addWidget(self.audit_group)
        self.audit_search = QLineEdit()
        self.audit_search.setObjectName("auditSearch")
        self.audit_search.setAccessibleName("Search the activity record")
        self.audit_search.setPlaceholderText("Search, for example a file name or a site")
        self.audit_search.setClearButtonEnabled(True)
        self.audit_search.textChanged.connect(lambda _t: self._filter_audit())
        row.addWidget(self.audit_search, 1)
        export = _push("Export…", "exportAudit", "Export the rows shown")
        export.setToolTip("Save the rows shown as a spreadsheet file (CSV)")
        export.clicked.connect(self._export_audit)
        row.addWidget(export)
        al.addLayout(row)
        self.audit_view = _table("auditView", "Activity record", ["When", "What happened", "About"])
        header = self.audit_view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        al.addWidget(self.audit_view, 1)
        self.audit_message = _words("", "auditMessage")
        al.addWidget(self.audit_message)
        return audit

    def _support_tab(self) -> QWidget:
        support = QWidget()
        sl = QVBoxLayout(support)
        sl.addWidget(
            _words(
                "If something does not work, whoever looks after Paddock for you can help faster with the "
                "details of this computer and of the last session. They hold no file contents and no keys."
            )
        )
        self.support_button = _push("Copy details for support", "supportBundle")
        self.support_button.setToolTip("Save the details to a file and copy them, to paste into your message")
        self.support_button.clicked.connect(self._support)
        sl.addWidget(self.support_button, alignment=Qt.AlignmentFlag.AlignLeft)
        self.support_message = _words("", "supportMessage")
        sl.addWidget(self.support_message)
        sl.addStretch(1)
        return support

    def refresh(self) -> None:
        desk = self.bridge.desk
        self.bridge.call(desk.settings.key_status(), self.key_status.setText, self.key_status.setText)
        self.bridge.call(desk.settings.policy_sentences(), self._show_policy, self._policy_error)
        self.bridge.call(desk.settings.endpoint_rows(), self._show_endpoints, self._policy_error)
        self.bridge.call(desk.settings.audit_rows(), self._show_audit, self.audit_message.setText)

    def _set_model(self) -> None:
        self.bridge.desk.model = self.model_edit.text().strip() or None

    def _show_policy(self, rows: list[tuple[str, str]]) -> None:
        self.policy_table.setRowCount(len(rows))
        for i, (sentence, who) in enumerate(rows):
            for j, text in enumerate((sentence, who)):
                item = QTableWidgetItem(text)
                item.setToolTip(plain_tip(text))
                self.policy_table.setItem(i, j, item)
        self.policy_table.resizeColumnToContents(1)
        self.policy_table.resizeRowsToContents()

    def _show_endpoints(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        self.endpoint_table.setRowCount(len(rows))
        chosen = self.key_endpoint.currentData()
        self.key_endpoint.clear()
        for i, (name, _kind, where, models, key) in enumerate(rows):
            for j, text in enumerate((name, where, models, key)):
                self.endpoint_table.setItem(i, j, QTableWidgetItem(text))
            if key != "needs no key":
                self.key_endpoint.addItem(name, name)
        for column in range(3):
            self.endpoint_table.resizeColumnToContents(column)
        if chosen is not None and self.key_endpoint.findData(chosen) >= 0:
            self.key_endpoint.setCurrentIndex(self.key_endpoint.findData(chosen))

    def _endpoint(self) -> str | None:
        data = self.key_endpoint.currentData()
        return str(data) if data is not None else None

    def _policy_error(self, message: str) -> None:
        self.policy_table.setRowCount(1)
        self.policy_table.setItem(0, 0, QTableWidgetItem(message))

    def _show_audit(self, rows: list[AuditRow]) -> None:
        self.audit = rows
        self._filter_audit()

    def _filter_audit(self) -> None:
        self.shown_audit = filter_audit(self.audit, self.audit_group.currentText(), self.audit_search.text())
        self.audit_view.setRowCount(len(self.shown_audit))
        for i, r in enumerate(self.shown_audit):
            for j, text in enumerate((r.when, r.what, r.about)):
                item = QTableWidgetItem(text)
                item.setToolTip(plain_tip(text))
                self.audit_view.setItem(i, j, item)
        total = len(self.audit)
        shown = len(self.shown_audit)
        self.audit_message.setText(
            "Nothing has been recorded yet." if not total else f"{shown} of the latest {total} entries shown."
        )

    def _export_audit(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the activity record", "activity.csv", "CSV (*.csv)")
        if path:
            self.export_audit(Path(path))

    def export_audit(self, path: Path) -> None:
        """Save the rows shown (with their records) to ``path``."""
        rows = list(self.shown_audit)
        self.bridge.call(
            self.bridge.desk.settings.export_audit(rows, path),
            lambda n: self.audit_message.setText(f"Saved {n} entries to {path.name}."),
            self.audit_message.setText,
        )

    def _support(self) -> None:
        self.support_button.setEnabled(False)
        self.support_message.setText("Gathering the details…")
        self.bridge.call(self.bridge.desk.settings.support_bundle(), self._support_done, self._support_failed)

    def _support_done(self, path: Path) -> None:
        self.support_button.setEnabled(True)
        self.bundle = path
        QGuiApplication.clipboard().setText(path.read_text(encoding="utf-8"))
        self.support_message.setText(
            f"Copied, and saved as {path}. Paste them into your message to whoever looks after Paddock, "
            "or attach that file."
        )

    def _support_failed(self, message: str) -> None:
        self.support_button.setEnabled(True)
        self.support_message.setText(message)

    def _replace(self) -> None:
        secret = self.new_key.text()
        self.new_key.clear()
        if secret.strip():
            self.bridge.call(self.bridge.desk.settings.store_key(secret, self._endpoint()),
                             lambda _: self._said("The new key is stored."), self._said)  # fmt: skip

    def _remove(self) -> None:
        self.bridge.call(
            self.bridge.desk.settings.remove_key(self._endpoint()),
            lambda gone: self._said("The key was removed." if gone else "There was no key to remove."),
            self._said,
        )

    def _revoke(self) -> None:
        self.bridge.call(
            self.bridge.desk.settings.revoke_sessions(),
            lambda _: self._said("Done: every session so far has lost its internet access, running ones included."),
            self._said,
        )

    def _said(self, message: str) -> None:
        self.key_message.setText(message)
        self.bridge.call(self.bridge.desk.settings.key_status(), self.key_status.setText, self.key_status.setText)
        self.bridge.call(self.bridge.desk.settings.endpoint_rows(), self._show_endpoints, self._policy_error)
