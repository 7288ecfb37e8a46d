"""Settings: model and the endpoints policy allows (with each one's key status); keys (status,
replace, remove, per endpoint); revoke every session token; the effective
policy (read-only: admins set it); the audit log."""

from __future__ import annotations

import json

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from paddock.ui.bridge import Bridge


class SettingsDialog(QDialog):
    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Paddock settings")
        self.resize(720, 480)
        self.bridge = bridge
        desk = bridge.desk
        tabs = QTabWidget()
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the settings")
        layout.addWidget(buttons)
        tabs.addTab(self._model_tab(desk.model or ""), "Model")
        tabs.addTab(self._keys_tab(), "Keys")
        tabs.addTab(self._policy_tab(), "Policy")
        tabs.addTab(self._audit_tab(), "Audit log")
        self.refresh()

    def _model_tab(self, current: str) -> QWidget:
        model = QWidget()
        ml = QVBoxLayout(model)
        ml.addWidget(QLabel("The assistant's model, as ENDPOINT:MODEL (used from the next folder you open):"))
        self.model_edit = QLineEdit(current)
        self.model_edit.setObjectName("modelEdit")
        self.model_edit.setAccessibleName("Model")
        self.model_edit.setPlaceholderText("Empty: the default model on the default endpoint, e.g. openai:llama3.1")
        self.model_edit.editingFinished.connect(self._set_model)
        ml.addWidget(self.model_edit)
        ml.addSpacing(8)
        ml.addWidget(QLabel("The model endpoints your organisation allows (the first is the default):"))
        self.endpoint_table = QTableWidget(0, 4)
        self.endpoint_table.setObjectName("endpointTable")
        self.endpoint_table.setAccessibleName("Model endpoints your organisation allows")
        self.endpoint_table.setHorizontalHeaderLabels(["Endpoint", "Where", "Models", "Key"])
        self.endpoint_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.endpoint_table.verticalHeader().setVisible(False)
        self.endpoint_table.horizontalHeader().setStretchLastSection(True)
        ml.addWidget(self.endpoint_table, 1)
        return model

    def _keys_tab(self) -> QWidget:
        keys = QWidget()
        kl = QVBoxLayout(keys)
        self.key_status = QLabel("…")
        self.key_status.setObjectName("keyStatus")
        self.key_status.setWordWrap(True)
        kl.addWidget(self.key_status)
        row = QHBoxLayout()
        self.key_endpoint = QComboBox()
        self.key_endpoint.setObjectName("keyEndpoint")
        self.key_endpoint.setAccessibleName("Endpoint")
        self.key_endpoint.setToolTip("The model endpoint whose key to replace or remove")
        row.addWidget(self.key_endpoint)
        self.new_key = QLineEdit()
        self.new_key.setObjectName("replaceKeyEdit")
        self.new_key.setAccessibleName("New key")
        self.new_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_key.setPlaceholderText("A new key, to replace the stored one")
        row.addWidget(self.new_key, 1)
        replace = QPushButton("Replace key")
        replace.setObjectName("replaceKey")
        replace.setAccessibleName("Replace key")
        replace.clicked.connect(self._replace)
        row.addWidget(replace)
        kl.addLayout(row)
        remove = QPushButton("Remove key")
        remove.setObjectName("removeKey")
        remove.setAccessibleName("Remove key")
        remove.clicked.connect(self._remove)
        kl.addWidget(remove)
        kl.addSpacing(12)
        kl.addWidget(QLabel("Cut off the network access of every running and earlier session at once:"))
        revoke = QPushButton("Revoke all session tokens")
        revoke.setObjectName("revokeTokens")
        revoke.setAccessibleName("Revoke all session tokens")
        revoke.clicked.connect(self._revoke)
        kl.addWidget(revoke)
        self.key_message = QLabel("")
        self.key_message.setObjectName("keysMessage")
        kl.addWidget(self.key_message)
        kl.addStretch(1)
        return keys

    def _policy_tab(self) -> QWidget:
        policy = QWidget()
        pl = QVBoxLayout(policy)
        pl.addWidget(QLabel("What your organisation allows. Values set by an administrator cannot be changed here."))
        self.policy_table = QTableWidget(0, 3)
        self.policy_table.setObjectName("policyTable")
        self.policy_table.setAccessibleName("Policy settings")
        self.policy_table.setHorizontalHeaderLabels(["Setting", "Value", "Set by"])
        self.policy_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.policy_table.horizontalHeader().setStretchLastSection(True)
        pl.addWidget(self.policy_table)
        return policy

    def _audit_tab(self) -> QWidget:
        audit = QWidget()
        al = QVBoxLayout(audit)
        al.addWidget(QLabel("The most recent entries of the audit log (what the assistant and the sandbox did):"))
        self.audit_view = QPlainTextEdit()
        self.audit_view.setObjectName("auditView")
        self.audit_view.setAccessibleName("Audit log")
        self.audit_view.setReadOnly(True)
        al.addWidget(self.audit_view)
        return audit

    def refresh(self) -> None:
        desk = self.bridge.desk
        self.bridge.call(desk.settings.key_status(), self.key_status.setText, self.key_status.setText)
        self.bridge.call(desk.settings.policy_rows(), self._show_policy, self._policy_error)
        self.bridge.call(desk.settings.endpoint_rows(), self._show_endpoints, self._policy_error)
        self.bridge.call(desk.settings.audit_records(), self._show_audit, self.audit_view.setPlainText)

    def _set_model(self) -> None:
        self.bridge.desk.model = self.model_edit.text().strip() or None

    def _show_policy(self, rows: list[tuple[str, str, str]]) -> None:
        self.policy_table.setRowCount(len(rows))
        for i, (key, value, tier) in enumerate(rows):
            for j, text in enumerate((key.replace("_", " "), value, tier)):
                self.policy_table.setItem(i, j, QTableWidgetItem(text))

    def _show_endpoints(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        self.endpoint_table.setRowCount(len(rows))
        chosen = self.key_endpoint.currentData()
        self.key_endpoint.clear()
        for i, (name, kind, where, models, key) in enumerate(rows):
            for j, text in enumerate((f"{name} ({kind})", where, models, key)):
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
        self.policy_table.setItem(0, 0, QTableWidgetItem("error"))
        self.policy_table.setItem(0, 1, QTableWidgetItem(message))

    def _show_audit(self, records: list[dict[str, object]]) -> None:
        self.audit_view.setPlainText("\n".join(json.dumps(r, ensure_ascii=False) for r in records) or "(empty)")

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
            lambda _: self._said("Every session token is revoked; running sessions lost their network access."),
            self._said,
        )

    def _said(self, message: str) -> None:
        self.key_message.setText(message)
        self.bridge.call(self.bridge.desk.settings.key_status(), self.key_status.setText, self.key_status.setText)
        self.bridge.call(self.bridge.desk.settings.endpoint_rows(), self._show_endpoints, self._policy_error)
