"""The window's pages: welcome (first run), folder, chat, summary. Widgets only; the work is in
``paddock.session.desk`` and reaches here as events through the bridge."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from paddock.session import Change, EgressQuestion, FirstRun, FolderCheck, SandboxState, SessionSummary


def _label(text: str, name: str = "", *, rich: bool = False, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    return label


def _title(text: str) -> QLabel:
    label = _label(text)
    font = label.font()
    font.setPointSize(font.pointSize() + 6)
    font.setBold(True)
    label.setFont(font)
    return label


def _button(text: str, name: str, slot: Callable[[], None]) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.clicked.connect(slot)
    return button


# ---------------------------------------------------------------------- welcome


class WelcomePage(QWidget):
    """First run: what Paddock is, the key (stored once, never shown again), the host check."""

    key_entered = Signal(str)
    proceed = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.addWidget(_title("Welcome to Paddock"))
        layout.addWidget(
            _label(
                "Paddock lets an AI assistant do real work on the files in one folder you choose. "
                "Everything it runs happens inside a small, sealed-off computer of its own: it sees only "
                "that folder, it has no internet unless your organisation allows it, and it never sees "
                "your passwords or keys."
            )
        )
        layout.addSpacing(12)
        self.key_box = QFrame()
        key_layout = QVBoxLayout(self.key_box)
        key_layout.addWidget(
            _label("Paste the assistant key your organisation gave you. It is kept in this computer's keychain.")
        )
        row = QHBoxLayout()
        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("keyEdit")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Assistant key")
        self.key_edit.returnPressed.connect(self._save)
        row.addWidget(self.key_edit)
        row.addWidget(_button("Save key", "saveKey", self._save))
        key_layout.addLayout(row)
        self.key_message = _label("", "keyMessage")
        key_layout.addWidget(self.key_message)
        layout.addWidget(self.key_box)
        layout.addSpacing(12)
        layout.addWidget(_label("Checking this computer…", "checksTitle"))
        self.checks = _label("", "checks", rich=True)
        layout.addWidget(self.checks)
        layout.addStretch(1)
        self.continue_button = _button("Continue", "continueButton", self.proceed.emit)
        self.continue_button.setEnabled(False)
        layout.addWidget(self.continue_button, alignment=Qt.AlignmentFlag.AlignRight)
        self._needs_key = True
        self._blocking = False

    def _save(self) -> None:
        secret = self.key_edit.text()
        self.key_edit.clear()  # never kept or shown again
        if secret.strip():
            self.key_message.setText("Saving…")
            self.key_entered.emit(secret)

    def key_saved(self, ok: bool, message: str) -> None:
        self.key_message.setText(message)
        if ok:
            self._needs_key = False
            self.key_box.setEnabled(False)
        self._update()

    def show_first_run(self, state: FirstRun) -> None:
        self._needs_key = state.needs_key
        self.key_box.setVisible(state.needs_key)
        items = []
        for c in state.checks:
            mark = "✔" if c.ok else ("✘" if c.required else "•")
            fix = f"<br><i>What to do: {html.escape(c.fix)}</i>" if c.fix and not c.ok else ""
            items.append(f"<p>{mark} <b>{html.escape(c.name)}</b>: {html.escape(c.detail)}{fix}</p>")
        self.checks.setText("".join(items))
        problems = state.problems
        self.findChild(QLabel, "checksTitle").setText(  # type: ignore[union-attr]
            "This computer is ready."
            if not problems
            else "Some things need fixing before Paddock can start its sandbox:"
        )
        self._blocking = bool(problems)
        self._update()

    def _update(self) -> None:
        self.continue_button.setEnabled(not self._needs_key)


# ---------------------------------------------------------------------- folder


class FolderPage(QWidget):
    """Choose a folder (or a recent one); refusals with the reason; the trust question."""

    chosen = Signal(Path)
    trust_answered = Signal(Path, bool)
    settings_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(_title("Which folder should the assistant work on?"), 1)
        top.addWidget(_button("Settings", "settingsButton", self.settings_requested.emit))
        layout.addLayout(top)
        layout.addWidget(_label("The assistant will see only this folder. It can read, change and create files in it."))
        left = Qt.AlignmentFlag.AlignLeft
        layout.addWidget(_button("Choose a folder…", "chooseFolder", self._browse), alignment=left)
        layout.addWidget(_label("Recent folders"))
        self.recent = QListWidget()
        self.recent.setObjectName("recentFolders")
        self.recent.itemActivated.connect(lambda item: self.chosen.emit(Path(item.text())))
        layout.addWidget(self.recent, 1)
        self.error = _label("", "folderError")
        self.error.setStyleSheet("color: #b00020;")
        layout.addWidget(self.error)
        self.trust_box = QFrame()
        self.trust_box.setObjectName("trustBox")
        self.trust_box.setFrameShape(QFrame.Shape.StyledPanel)
        tl = QVBoxLayout(self.trust_box)
        self.trust_text = _label("", "trustText", rich=True)
        tl.addWidget(self.trust_text)
        row = QHBoxLayout()
        self._trust_folder: Path | None = None
        row.addWidget(_button("Trust this folder", "trustYes", lambda: self._answer(True)))
        row.addWidget(_button("Open without trusting", "trustNo", lambda: self._answer(False)))
        row.addStretch(1)
        tl.addLayout(row)
        self.trust_box.hide()
        layout.addWidget(self.trust_box)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a folder for the assistant")
        if path:
            self.chosen.emit(Path(path))

    def set_recent(self, folders: list[Path]) -> None:
        self.recent.clear()
        for f in folders:
            self.recent.addItem(QListWidgetItem(str(f)))

    def refuse(self, reason: str) -> None:
        self.trust_box.hide()
        self.error.setText(f"This folder can't be used: {reason}")

    def ask_trust(self, check: FolderCheck) -> None:
        self.error.clear()
        self._trust_folder = check.folder
        files = "".join(f"<li>{html.escape(f)}</li>" for f in check.behaviour)
        inside = (
            f"<p>Inside it, these files would change how the assistant behaves:</p><ul>{files}</ul>"
            "<p>If you trust the folder, Paddock uses them. If not, they are ignored "
            "(the assistant can still read them as ordinary files).</p>"
            if check.behaviour
            else "<p>Nothing inside it would change how the assistant behaves.</p>"
        )
        self.trust_text.setText(
            f"<p><b>Do you trust {html.escape(check.folder.name or str(check.folder))}?</b> "
            f"You haven't used it with Paddock before.</p>{inside}"
        )
        self.trust_box.show()

    def _answer(self, trust: bool) -> None:
        if self._trust_folder is not None:
            self.trust_box.hide()
            self.trust_answered.emit(self._trust_folder, trust)


# ---------------------------------------------------------------------- chat


class ToolCard(QFrame):
    """One tool call: what it does in plain words; the command and output on expand."""

    def __init__(self, summary: str, detail_in: str) -> None:
        super().__init__()
        self.setObjectName("toolCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        row = QHBoxLayout()
        self.status = _label("⏳", "toolStatus", wrap=False)
        row.addWidget(self.status)
        self.summary = _label(summary, "toolSummary")
        row.addWidget(self.summary, 1)
        self.toggle = _button("Details", "toolToggle", self._toggle)
        self.toggle.setCheckable(True)
        row.addWidget(self.toggle)
        layout.addLayout(row)
        self.detail = QPlainTextEdit()
        self.detail.setObjectName("toolDetail")
        self.detail.setReadOnly(True)
        self.detail.setPlainText(detail_in)
        self.detail.setMaximumHeight(180)
        self.detail.hide()
        layout.addWidget(self.detail)

    def _toggle(self) -> None:
        self.detail.setVisible(self.toggle.isChecked())

    def finish(self, ok: bool, summary: str, output: str) -> None:
        self.status.setText("✔" if ok else "✘")
        if not ok:
            self.summary.setText(f"{summary} (that did not work)")
        self.detail.appendPlainText("\n— output —\n" + (output.strip() or "(no output)"))


class QuestionCard(QFrame):
    def __init__(self, question: EgressQuestion, answer: Callable[[str, bool], None]) -> None:
        super().__init__()
        self.setObjectName("questionCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.addWidget(_label(question.text, "questionText"))
        row = QHBoxLayout()

        def reply(allow: bool) -> None:
            self.setEnabled(False)
            answer(question.id, allow)

        row.addWidget(_button("Allow for this session", "questionYes", lambda: reply(True)))
        row.addWidget(_button("Don't allow", "questionNo", lambda: reply(False)))
        row.addStretch(1)
        layout.addLayout(row)


class ChatPage(QWidget):
    send_requested = Signal(str)
    stop_requested = Signal()
    restart_requested = Signal()
    finish_requested = Signal()
    settings_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.folder_label = _label("", "folderLabel")
        font = self.folder_label.font()
        font.setBold(True)
        self.folder_label.setFont(font)
        top.addWidget(self.folder_label, 1)
        top.addWidget(_button("Settings", "chatSettings", self.settings_requested.emit))
        self.finish_button = _button("Finish", "finishButton", self.finish_requested.emit)
        top.addWidget(self.finish_button)
        layout.addLayout(top)

        status = QHBoxLayout()
        self.status = _label("The sandbox is stopped", "sandboxStatus")
        status.addWidget(self.status, 1)
        self.progress = QProgressBar()
        self.progress.setObjectName("sandboxProgress")
        self.progress.setRange(0, 0)  # busy: the steps of a boot have no known length
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        status.addWidget(self.progress)
        self.restart_button = _button("Restart", "restartButton", self.restart_requested.emit)
        self.restart_button.hide()
        status.addWidget(self.restart_button)
        layout.addLayout(status)

        self.scroller = QScrollArea()
        self.scroller.setWidgetResizable(True)
        self.transcript = QWidget()
        self.transcript.setObjectName("transcript")
        self.items = QVBoxLayout(self.transcript)
        self.items.addStretch(1)
        self.scroller.setWidget(self.transcript)
        layout.addWidget(self.scroller, 1)

        row = QHBoxLayout()
        self.input = QLineEdit()
        self.input.setObjectName("messageEdit")
        self.input.setPlaceholderText("Tell the assistant what to do with the files in this folder")
        self.input.returnPressed.connect(self._send)
        row.addWidget(self.input, 1)
        self.send_button = _button("Send", "sendButton", self._send)
        row.addWidget(self.send_button)
        self.stop_button = _button("Stop", "stopButton", self.stop_requested.emit)
        self.stop_button.setEnabled(False)
        row.addWidget(self.stop_button)
        layout.addLayout(row)
        self._answer: QLabel | None = None
        self.cards: dict[str, ToolCard] = {}
        self._ready = False
        self._working = False

    def reset(self, folder: Path) -> None:
        self.folder_label.setText(f"Working on {folder}")
        while self.items.count() > 1:
            item = self.items.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.cards.clear()
        self._answer = None

    def _add(self, widget: QWidget) -> None:
        self.items.insertWidget(self.items.count() - 1, widget)
        bar = self.scroller.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _send(self) -> None:
        text = self.input.text().strip()
        if not text or not self._ready or self._working:
            return
        self.input.clear()
        self.add_user(text)
        self.set_working(True)
        self.send_requested.emit(text)

    def add_user(self, text: str) -> None:
        label = _label(f"You: {text}", "userMessage")
        label.setStyleSheet("background: #eef3fb; padding: 6px; border-radius: 4px;")
        self._add(label)
        self._answer = None

    def add_text(self, delta: str) -> None:
        if self._answer is None:
            self._answer = _label("", "assistantMessage")
            self._answer.setStyleSheet("padding: 6px;")
            self._add(self._answer)
        self._answer.setText(self._answer.text() + delta)

    def add_tool(self, call_id: str, summary: str, detail: str) -> None:
        card = ToolCard(summary, detail)
        self.cards[call_id] = card
        self._add(card)
        self._answer = None

    def finish_tool(self, call_id: str, ok: bool, summary: str, output: str) -> None:
        card = self.cards.get(call_id)
        if card is not None:
            card.finish(ok, summary, output)

    def add_question(self, question: EgressQuestion, answer: Callable[[str, bool], None]) -> None:
        self._add(QuestionCard(question, answer))

    def add_note(self, text: str, *, error: bool = False) -> None:
        label = _label(text, "noteError" if error else "note")
        label.setStyleSheet("color: #b00020;" if error else "color: #555;")
        self._add(label)
        self._answer = None

    def set_working(self, working: bool) -> None:
        self._working = working
        self.stop_button.setEnabled(working)
        self.send_button.setEnabled(self._ready and not working)

    def set_sandbox(self, state: SandboxState, detail: str) -> None:
        words = {
            SandboxState.STARTING: f"Starting the sandbox: {detail}",
            SandboxState.READY: f"The sandbox is ready. {detail}",
            SandboxState.STOPPED: "The sandbox is stopped.",
            SandboxState.FAILED: f"The sandbox stopped working: {detail}",
        }
        self.status.setText(words[state])
        self.progress.setVisible(state is SandboxState.STARTING)
        self.restart_button.setVisible(state in (SandboxState.FAILED, SandboxState.STOPPED))
        self._ready = state is SandboxState.READY
        self.send_button.setEnabled(self._ready and not self._working)


# ---------------------------------------------------------------------- summary


class SummaryPage(QWidget):
    done = Signal()
    revert_requested = Signal(object)  # a Change

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.title = _title("What changed")
        layout.addWidget(self.title)
        self.counts = _label("", "summaryCounts")
        layout.addWidget(self.counts)
        self.changes = QListWidget()
        self.changes.setObjectName("changedFiles")
        self.changes.itemActivated.connect(self._open_item)
        layout.addWidget(self.changes, 1)
        left = Qt.AlignmentFlag.AlignLeft
        layout.addWidget(_button("Open the selected file", "openFile", self._open_selected), alignment=left)
        self.warning = _label(
            "These files could run on your computer later, outside the sandbox (for example when you use "
            "git or an editor on this folder). Look at them, or put them back as they were:",
            "riskWarning",
        )
        self.warning.setStyleSheet("color: #8a4b00;")
        layout.addWidget(self.warning)
        self.risky = QVBoxLayout()
        layout.addLayout(self.risky)
        self.message = _label("", "summaryMessage")
        layout.addWidget(self.message)
        layout.addWidget(_button("Done", "summaryDone", self.done.emit), alignment=Qt.AlignmentFlag.AlignRight)
        self.folder: Path | None = None
        self.revert_buttons: dict[str, QPushButton] = {}

    def show_summary(self, summary: SessionSummary) -> None:
        self.folder = summary.folder
        self.title.setText(f"What changed in {summary.folder.name or summary.folder}")
        n = {k: sum(1 for c in summary.changes if c.kind == k) for k in ("created", "changed", "deleted")}
        asked = summary.questions_asked
        self.counts.setText(
            f"{n['created']} created, {n['changed']} changed, {n['deleted']} deleted. "
            f"The assistant asked you {asked} question{'s' if asked != 1 else ''} this session."
        )
        self.changes.clear()
        for c in summary.changes:
            item = QListWidgetItem(f"{c.kind}: {c.path}")
            item.setData(Qt.ItemDataRole.UserRole, c.path if c.kind != "deleted" else "")
            self.changes.addItem(item)
        while self.risky.count():
            old = self.risky.takeAt(0)
            widget = old.widget() if old is not None else None
            if widget is not None:
                widget.deleteLater()
        self.revert_buttons.clear()
        self.warning.setVisible(bool(summary.risky))
        for c in summary.risky:
            row = QWidget()
            rl = QHBoxLayout(row)
            rl.setContentsMargins(0, 0, 0, 0)
            rl.addWidget(_label(f"⚠ {c.path}: {c.risk}", "riskyFile"), 1)
            button = _button("Revert", "revertButton", self._reverter(c))
            self.revert_buttons[c.path] = button
            rl.addWidget(button)
            self.risky.addWidget(row)
        self.message.clear()

    def _reverter(self, change: Change) -> Callable[[], None]:
        return lambda: self.revert_requested.emit(change)

    def reverted(self, change: Change, message: str) -> None:
        self.message.setText(message)
        button = self.revert_buttons.get(change.path)
        if button is not None:
            button.setEnabled(False)

    def _open_item(self, item: QListWidgetItem) -> None:
        rel = item.data(Qt.ItemDataRole.UserRole)
        if rel and self.folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder / rel)))

    def _open_selected(self) -> None:
        item = self.changes.currentItem()
        if item is not None:
            self._open_item(item)
