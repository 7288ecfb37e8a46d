"""The window's pages: welcome (first run), folder, chat, summary. Widgets only; the work is in
``paddock.desk.desk`` and reaches here as events through the bridge."""

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
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from paddock.desk import Change, FirstRun, FolderCheck, SessionSummary, plain_checks, why_not_open
from paddock.ui import theme
from paddock.ui.filediff import DiffView
from paddock.ui.previews import PreviewList


def _label(text: str, name: str = "", *, rich: bool = False, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    return label


PAGE_WIDTH = 880  # the widest a page of text and choices grows (lines stay readable on a wide screen)


def _column(page: QWidget) -> QVBoxLayout:
    """The page's content: a column of at most ``PAGE_WIDTH``, centred, with comfortable margins."""
    outer = QHBoxLayout(page)
    outer.setContentsMargins(24, 20, 24, 16)
    inner = QWidget()
    inner.setObjectName("pageColumn")
    inner.setMaximumWidth(PAGE_WIDTH)
    outer.addStretch(1)
    outer.addWidget(inner, 100)
    outer.addStretch(1)
    layout = QVBoxLayout(inner)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(10)
    return layout


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
    button.setAccessibleName(text.rstrip("…"))
    button.clicked.connect(slot)
    theme.button_icon(button)
    return button


# ---------------------------------------------------------------------- welcome


class WelcomePage(QWidget):
    """First run: what Paddock is, the key (stored once, never shown again), the host check."""

    key_entered = Signal(str)
    proceed = Signal()
    recheck = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = _column(self)
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
        self.key_box.setObjectName("keyBox")
        key_layout = QVBoxLayout(self.key_box)
        key_layout.addWidget(
            _label("Paste the assistant key your organisation gave you. It is kept in this computer's keychain.")
        )
        row = QHBoxLayout()
        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("keyEdit")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Assistant key")
        self.key_edit.setAccessibleName("Assistant key")
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
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.recheck_button = _button("Check again", "recheckButton", self._recheck)
        self.recheck_button.hide()
        buttons.addWidget(self.recheck_button)
        self.continue_button = _button("Continue", "continueButton", self.proceed.emit)
        self.continue_button.setEnabled(False)
        buttons.addWidget(self.continue_button)
        layout.addLayout(buttons)
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
        for c in plain_checks(state):
            tint = theme.colours(theme.current())
            mark, colour = ("✔", tint.success) if c.ok else ("✘", tint.danger) if c.required else ("•", tint.muted)
            mark = f'<span style="color:{colour}">{mark}</span>'
            fix = f"<br><i>What to do: {html.escape(c.todo)}</i>" if c.todo else ""
            items.append(f"<p>{mark} <b>{html.escape(c.name)}</b>: {html.escape(c.says)}{fix}</p>")
        self.checks.setText("".join(items))
        problems = state.problems
        self.findChild(QLabel, "checksTitle").setText(  # type: ignore[union-attr]
            "This computer is ready."
            if not problems
            else "Some things need fixing before Paddock can start its sandbox:"
        )
        self._blocking = bool(problems)
        self.recheck_button.setVisible(self._blocking)
        self.recheck_button.setEnabled(True)
        self._update()

    def _recheck(self) -> None:
        self.recheck_button.setEnabled(False)
        self.recheck.emit()

    def _update(self) -> None:
        """Continue only with a key and no failed required check."""
        self.continue_button.setEnabled(not self._needs_key and not self._blocking)


# ---------------------------------------------------------------------- folder


class FolderPage(QWidget):
    """Choose a folder (or a recent one); refusals with the reason; the trust question."""

    chosen = Signal(Path)
    trust_answered = Signal(Path, bool)
    settings_requested = Signal()
    schedules_requested = Signal()
    notes_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = _column(self)
        top = QHBoxLayout()
        top.addWidget(_title("Which folder should the assistant work on?"), 1)
        top.addWidget(_button("Schedules", "schedulesButton", self.schedules_requested.emit))
        top.addWidget(_button("Notes", "notesButton", self.notes_requested.emit))
        top.addWidget(_button("Settings", "settingsButton", self.settings_requested.emit))
        layout.addLayout(top)
        layout.addWidget(_label("The assistant will see only this folder. It can read, change and create files in it."))
        left = Qt.AlignmentFlag.AlignLeft
        layout.addWidget(_button("Choose a folder…", "chooseFolder", self._browse), alignment=left)
        layout.addWidget(_label("Recent folders", "sectionTitle"))
        self.recent = QListWidget()
        self.recent.setObjectName("recentFolders")
        self.recent.setAccessibleName("Recent folders")
        self.recent.itemActivated.connect(
            lambda item: self.chosen.emit(Path(str(item.data(Qt.ItemDataRole.UserRole) or item.text())))
        )
        layout.addWidget(self.recent, 1)
        self.error = _label("", "folderError")
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
        for f in folders:  # by name, with where it is beside it (and on hover)
            item = QListWidgetItem(f"{f.name or f}    {_home(f.parent)}")
            item.setData(Qt.ItemDataRole.UserRole, str(f))
            item.setToolTip(str(f))
            self.recent.addItem(item)

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


_KIND_WORDS = {"created": "New", "changed": "Changed", "deleted": "Removed"}


def _home(folder: Path) -> str:
    """``folder`` with the home folder written as ~ (shorter, and what a person calls it)."""
    try:
        return str(Path("~") / folder.relative_to(Path.home()))
    except ValueError:
        return str(folder)


class SummaryPage(QWidget):
    done = Signal()
    revert_requested = Signal(object)  # a Change
    undo_all_requested = Signal()
    diff_requested = Signal(str)  # a changed file's path: show how its text changed

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 16)
        layout.setSpacing(10)
        self.title = _title("What changed")
        layout.addWidget(self.title)
        self.counts = _label("", "summaryCounts")
        layout.addWidget(self.counts)
        self.changes = QListWidget()
        self.changes.setObjectName("changedFiles")
        self.changes.setAccessibleName("Files that changed")
        self.changes.itemActivated.connect(self._open_item)
        self.changes.currentItemChanged.connect(self._selected)
        layout.addWidget(self.changes, 1)
        self.diff = DiffView()  # how the selected changed text file's lines changed
        layout.addWidget(self.diff, 1)
        self.pictures_title = _label(
            "Pictures of the files made or changed (choose one to see it large):", "picturesTitle"
        )
        layout.addWidget(self.pictures_title)
        self.pictures = PreviewList("summaryPreviews", "Pictures of the files this session made or changed", 120)
        self.pictures.setWrapping(False)  # one row that scrolls sideways
        self.pictures.setFixedHeight(120 + 56)
        layout.addWidget(self.pictures)
        actions = QHBoxLayout()
        actions.addWidget(_button("Open the selected file", "openFile", self._open_selected))
        self.restore_file = _button("Restore the selected file", "restoreFile", self._restore_selected)
        actions.addWidget(self.restore_file)
        self.undo_all = _button("Undo everything from this session", "undoSession", self.undo_all_requested.emit)
        actions.addWidget(self.undo_all)
        actions.addStretch(1)
        layout.addLayout(actions)
        self.warning = _label(
            "These files could run on your computer later, outside the sandbox (for example when you use "
            "git or an editor on this folder). Look at them, or put them back as they were:",
            "riskWarning",
        )
        layout.addWidget(self.warning)
        self.risky = QVBoxLayout()
        layout.addLayout(self.risky)
        self.message = _label("", "summaryMessage")
        layout.addWidget(self.message)
        layout.addWidget(_button("Done", "summaryDone", self.done.emit), alignment=Qt.AlignmentFlag.AlignRight)
        self.folder: Path | None = None
        self.shown_changes: list[Change] = []
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
        self.diff.setVisible(False)
        self.shown_changes = list(summary.changes)
        for i, c in enumerate(summary.changes):
            item = QListWidgetItem(f"{_KIND_WORDS.get(c.kind, c.kind)}: {c.shown_path}")
            item.setData(Qt.ItemDataRole.UserRole, c.path if c.kind in ("created", "changed") else "")
            item.setData(Qt.ItemDataRole.UserRole + 1, i)
            self.changes.addItem(item)
        self.pictures.clear_pictures()
        self.pictures.add_previews(tuple(reversed(summary.pictures)))  # in the list's order
        self.pictures.setVisible(bool(summary.pictures))
        self.pictures_title.setVisible(bool(summary.pictures))
        undoable = summary.start_point is not None  # a restore point: any file, any size, deleted ones too
        self.undo_all.setVisible(undoable and bool(summary.changes))
        self.restore_file.setVisible(undoable and bool(summary.changes))
        self.undo_all.setEnabled(True)
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
            rl.addWidget(_label(f"⚠ {c.shown_path}: {c.risk}", "riskyFile"), 1)
            if c.kind in ("created", "changed") or undoable:
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

    def _restore_selected(self) -> None:
        item = self.changes.currentItem()
        if item is None:
            self.message.setText("Choose a file in the list first.")
            return
        index = item.data(Qt.ItemDataRole.UserRole + 1)
        if isinstance(index, int) and 0 <= index < len(self.shown_changes):
            change = self.shown_changes[index]
            if change.kind != "not scanned":
                self.revert_requested.emit(change)

    def _selected(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None = None) -> None:
        index = item.data(Qt.ItemDataRole.UserRole + 1) if item is not None else None
        change = self.shown_changes[index] if isinstance(index, int) and 0 <= index < len(self.shown_changes) else None
        self.diff.setVisible(False)
        if change is not None and change.kind == "changed":
            self.diff_requested.emit(change.path)

    def show_diff(self, text: str) -> None:
        self.diff.show_diff(text)

    def undone(self, message: str) -> None:
        self.message.setText(message)
        self.undo_all.setEnabled(False)

    def _open_item(self, item: QListWidgetItem) -> None:
        rel = item.data(Qt.ItemDataRole.UserRole)
        if rel and self.folder is not None:
            refused = why_not_open(self.folder, rel)
            if refused:
                self.message.setText(f"Not opened: {refused}")
                return
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder / rel)))

    def _open_selected(self) -> None:
        item = self.changes.currentItem()
        if item is not None:
            self._open_item(item)
