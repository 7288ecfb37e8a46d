"""The chat page: streamed answers, a card per tool call, egress questions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from paddock.desk import (
    ConversationRow,
    EgressQuestion,
    Replayed,
    SandboxState,
    TextDelta,
    ToolCalled,
    ToolFinished,
    ToolOutput,
    UserSaid,
)
from paddock.ui.activity import ActivityPanel
from paddock.ui.answer import AnswerView
from paddock.ui.cards import ToolCard
from paddock.ui.pages import _button, _label
from paddock.ui.tips import plain_tip


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
    schedules_requested = Signal()
    notes_requested = Signal()
    new_conversation_requested = Signal()
    conversation_chosen = Signal(str)
    undo_turn_requested = Signal(int)  # the restore point made before that message

    def __init__(self) -> None:
        super().__init__()
        outer = QHBoxLayout(self)
        outer.setContentsMargins(12, 10, 12, 12)
        outer.setSpacing(16)
        outer.addWidget(self._sidebar())
        main = QWidget()
        outer.addWidget(main, 1)
        self.activity = ActivityPanel()
        outer.addWidget(self.activity)
        layout = QVBoxLayout(main)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._top_bar())

        status = QHBoxLayout()
        status.setContentsMargins(10, 0, 0, 4)
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
        self.items.setSpacing(10)
        self.items.addStretch(1)
        self.scroller.setWidget(self.transcript)
        layout.addWidget(self.scroller, 1)

        row = QHBoxLayout()
        self.input = QLineEdit()
        self.input.setObjectName("messageEdit")
        self.input.setAccessibleName("Message to the assistant")
        self.input.setPlaceholderText("Tell the assistant what to do with the files in this folder")
        self.input.returnPressed.connect(self._send)
        row.addWidget(self.input, 1)
        self.send_button = _button("Send", "sendButton", self._send)
        row.addWidget(self.send_button)
        self.stop_button = _button("Stop", "stopButton", self.stop_requested.emit)
        self.stop_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.stop_button.setToolTip("Stop what the assistant is doing (Esc)")
        self.stop_button.setEnabled(False)
        row.addWidget(self.stop_button)
        layout.addLayout(row)
        self._answer: AnswerView | None = None
        self.cards: dict[str, ToolCard] = {}
        self.turn_undos: dict[int, QPushButton] = {}  # "Undo this" under each finished turn, by restore point
        self._ready = False
        self._working = False

    def _top_bar(self) -> QHBoxLayout:
        """The folder's name and the buttons beside it."""
        top = QHBoxLayout()
        self.folder_label = _label("", "folderLabel")
        font = self.folder_label.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.folder_label.setFont(font)
        top.addWidget(self.folder_label, 1)
        top.addWidget(_button("Schedules", "chatSchedules", self.schedules_requested.emit))
        top.addWidget(_button("Notes", "chatNotes", self.notes_requested.emit))
        top.addWidget(_button("Settings", "chatSettings", self.settings_requested.emit))
        self.finish_button = _button("Finish", "finishButton", self.finish_requested.emit)
        top.addWidget(self.finish_button)
        return top

    def _sidebar(self) -> QWidget:
        side = QFrame()
        side.setObjectName("historySidebar")
        side.setMaximumWidth(240)
        column = QVBoxLayout(side)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(_label("Conversations in this folder", "historyTitle"))
        self.new_button = _button("New conversation", "newConversation", self.new_conversation_requested.emit)
        self.new_button.setShortcut(QKeySequence.StandardKey.New)
        self.new_button.setToolTip("Start a new conversation on this folder (Ctrl+N)")
        column.addWidget(self.new_button)
        self.history = QListWidget()
        self.history.setObjectName("historyList")
        self.history.setAccessibleName("Conversations in this folder")
        self.history.setWordWrap(True)
        self.history.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.history.itemActivated.connect(self._chosen)
        column.addWidget(self.history, 1)
        return side

    def _chosen(self, item: QListWidgetItem) -> None:
        cid = item.data(Qt.ItemDataRole.UserRole)
        if cid and not self._working:
            self.conversation_chosen.emit(str(cid))

    def set_conversations(self, rows: list[ConversationRow]) -> None:
        self.history.clear()
        for row in rows:
            now = " (this one)" if row.id == "current" else ""
            item = QListWidgetItem(f"{row.title}\n{row.when}{now}")
            item.setData(Qt.ItemDataRole.UserRole, row.id)
            item.setToolTip(f"{row.messages} messages")
            self.history.addItem(item)
            if now:
                self.history.setCurrentItem(item)

    def replay(self, events: list[Replayed]) -> None:
        """Draw a saved conversation: its messages, answers and cards."""
        self.clear()
        for ev in events:
            if isinstance(ev, UserSaid):
                self.add_user(ev.text)
            elif isinstance(ev, TextDelta):
                self.add_text(ev.text)
            else:
                self.tool_event(ev)
        if self._answer is not None:
            self._answer.draw()  # the last answer, drawn whole now (it carries on from here)

    def reset(self, folder: Path) -> None:
        self.folder_label.setText(folder.name or str(folder))  # the folder by its name; the path on hover
        self.folder_label.setToolTip(plain_tip(str(folder)))
        self.folder_label.setAccessibleDescription(f"The folder the assistant works on: {folder}")
        self.history.clear()
        self.activity.clear()
        self.clear()

    def clear(self) -> None:
        while self.items.count() > 1:
            item = self.items.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.cards.clear()
        self.turn_undos.clear()
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

    def _end_answer(self) -> None:
        """The answer in progress is complete: draw what is still pending of it."""
        if self._answer is not None:
            self._answer.draw()
        self._answer = None

    def add_user(self, text: str) -> None:
        label = _label(text, "userMessage")
        label.setAccessibleName("You said")
        self._add(label)
        self._end_answer()

    def add_text(self, delta: str) -> None:
        if self._answer is None:
            self._answer = AnswerView()
            self._add(self._answer)
        self._answer.append_text(delta)

    def tool_event(self, ev: ToolCalled | ToolOutput | ToolFinished) -> None:
        if isinstance(ev, ToolCalled):
            self.add_tool(ev.call_id, ev.name, ev.input)
        elif isinstance(ev, ToolOutput):
            self.tool_output(ev.call_id, ev.text)
        else:
            self.finish_tool(ev.call_id, not ev.is_error, ev.detail, ev.duration_s)

    def add_tool(self, call_id: str, name: str, args: dict[str, Any]) -> None:
        card = ToolCard(name, args)
        self.cards[call_id] = card
        self._add(card)
        self._end_answer()

    def tool_output(self, call_id: str, text: str) -> None:
        card = self.cards.get(call_id)
        if card is not None:
            card.add_output(text)

    def finish_tool(self, call_id: str, ok: bool, output: str, duration_s: float) -> None:
        card = self.cards.get(call_id)
        if card is not None:
            card.finish(ok, output, duration_s)

    def add_turn_undo(self, point: int) -> None:
        """ "Undo this" under a finished turn: the folder back as it was before that message."""
        if self._answer is not None:
            self._answer.draw()
        button = _button("Undo this", "undoTurn", lambda: self.undo_turn_requested.emit(point))
        button.setAccessibleName("Undo what the assistant did for this message")
        button.setToolTip("Put the folder back as it was before this message (what came after it goes too).")
        self.turn_undos[point] = button
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addStretch(1)
        line.addWidget(button)
        self._add(row)

    def turn_undone(self, point: int, message: str) -> None:
        """That turn and every later one are undone: their buttons are spent."""
        for later, button in self.turn_undos.items():
            button.setEnabled(button.isEnabled() and later < point)
        self.add_note(message)

    def add_question(self, question: EgressQuestion, answer: Callable[[str, bool], None]) -> None:
        self._add(QuestionCard(question, answer))

    def add_note(self, text: str, *, error: bool = False) -> None:
        label = _label(text, "noteError" if error else "note")
        self._add(label)
        self._end_answer()

    def set_working(self, working: bool) -> None:
        if not working and self._answer is not None:
            self._answer.draw()  # the last words of the answer, drawn now
        self._working = working
        self.stop_button.setEnabled(working)
        self.send_button.setEnabled(self._ready and not working)

    def set_sandbox(self, state: SandboxState, detail: str) -> None:
        words = {
            SandboxState.STARTING: f"Starting the sandbox: {detail}",
            SandboxState.READY: f"The sandbox is ready. {detail}".strip(),
            SandboxState.STOPPED: "The sandbox is stopped.",
            SandboxState.FAILED: detail,
        }
        self.status.setText(words[state])
        self.progress.setVisible(state is SandboxState.STARTING)
        self.restart_button.setVisible(state in (SandboxState.FAILED, SandboxState.STOPPED))
        self._ready = state is SandboxState.READY
        self.send_button.setEnabled(self._ready and not self._working)


# ---------------------------------------------------------------------- summary
