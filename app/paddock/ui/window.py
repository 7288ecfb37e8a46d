"""The main window: a stack of pages driven by the ``Desk``'s events.

welcome (first run) ─► folder ─► chat ─► summary ─► folder …
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from paddock.core.engine import Engine
from paddock.desk import (
    Activity,
    Cancelled,
    Change,
    Desk,
    DeskEvent,
    EgressQuestion,
    Failed,
    Finished,
    FirstRun,
    FolderCheck,
    Notice,
    Replayed,
    SandboxState,
    SandboxStatus,
    Schedules,
    SessionSummary,
    TextDelta,
    ToolCalled,
    ToolFinished,
    ToolOutput,
    assistant_failure,
    notify,
    revert,
    sandbox_failure,
    say,
)
from paddock.ui.bridge import Bridge
from paddock.ui.chat import ChatPage
from paddock.ui.notes import NotesDialog
from paddock.ui.pages import FolderPage, SummaryPage, WelcomePage
from paddock.ui.problem import ProblemBar
from paddock.ui.schedules import ScheduleClock, ScheduleDialog
from paddock.ui.settings import SettingsDialog

NOTIFY_AFTER_S = 20.0  # a task at least this long gets a desktop notification when it ends unseen


class MainWindow(QMainWindow):
    def __init__(self, engine: Engine, desk: Desk) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Paddock")
        self.resize(900, 680)
        self.bridge = Bridge(engine, desk)
        self.desk = desk
        self.stack = QStackedWidget()
        self.problem = ProblemBar()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.problem)
        column.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.welcome = WelcomePage()
        self.folders = FolderPage()
        self.chat = ChatPage()
        self.summary = SummaryPage()
        for page in (self.welcome, self.folders, self.chat, self.summary):
            self.stack.addWidget(page)
        self.last_summary: SessionSummary | None = None
        self.settings: SettingsDialog | None = None
        self.schedules = Schedules()
        self.schedule_view: ScheduleDialog | None = None
        self.clock = ScheduleClock(self.bridge, self.schedules)  # runs due schedules where there is no systemd
        self.notes: NotesDialog | None = None
        self.notify_after_s = NOTIFY_AFTER_S
        self._sent_at = 0.0

        self.bridge.published.connect(self._on_event)
        self.bridge.problem.connect(self.problem.show_problem)
        self.welcome.recheck.connect(self._check_host)
        self.welcome.key_entered.connect(self._store_key)
        self.welcome.proceed.connect(self.show_folders)
        self.folders.chosen.connect(self.choose_folder)
        self.folders.trust_answered.connect(self._trust_answered)
        self.folders.settings_requested.connect(self.open_settings)
        self.folders.schedules_requested.connect(self.open_schedules)
        self.chat.schedules_requested.connect(self.open_schedules)
        self.chat.send_requested.connect(self._send)
        self.chat.stop_requested.connect(lambda: self.bridge.call(self.desk.stop()))
        self.chat.restart_requested.connect(self._restart)
        self.chat.finish_requested.connect(self._finish)
        self.chat.undo_turn_requested.connect(self._undo_turn)
        self.chat.settings_requested.connect(self.open_settings)
        self.chat.notes_requested.connect(self.open_notes)
        self.chat.new_conversation_requested.connect(lambda: self._conversation(None))
        self.chat.conversation_chosen.connect(self._conversation)
        self.folders.notes_requested.connect(self.open_notes)
        self.summary.done.connect(self.show_folders)
        self.summary.revert_requested.connect(self._revert)
        self.summary.undo_all_requested.connect(self._undo_all)
        self.summary.diff_requested.connect(self._diff)

        self.stack.setCurrentWidget(self.welcome)
        self._check_host()
        self.clock.start()

    # ------------------------------------------------------------------ first run

    def _check_host(self) -> None:
        self.bridge.call(self.desk.settings.first_run(), self._first_run, self._first_run_error)

    def _first_run(self, state: FirstRun) -> None:
        self.welcome.show_first_run(state)
        if not state.problems:
            self.bridge.call(self.desk.warm())  # the saved sandbox, made in the background
        if not state.needs_key and not state.problems:
            self.show_folders()

    def _first_run_error(self, message: str) -> None:
        self.welcome.checks.setText(message)

    def _store_key(self, secret: str) -> None:
        self.bridge.call(
            self.desk.settings.store_key(secret),
            lambda _: self.welcome.key_saved(True, "The key is stored in this computer's keychain."),
            lambda msg: self.welcome.key_saved(False, msg),
        )

    # ------------------------------------------------------------------ folders

    def show_folders(self) -> None:
        self.setWindowTitle("Paddock")
        self.folders.set_recent(self.desk.recent_folders())
        self.folders.error.clear()
        self.stack.setCurrentWidget(self.folders)

    def choose_folder(self, folder: Path) -> None:
        """The folder the person picked (from the dialog or the recent list)."""
        self.bridge.call(self.desk.check_folder(folder), self._checked, self.folders.refuse)

    def _checked(self, check: FolderCheck) -> None:
        if not check.allowed:
            self.folders.refuse(check.reason)
        elif not check.trusted:
            self.folders.ask_trust(check)
        else:
            self._open(check.folder)

    def _trust_answered(self, folder: Path, trust: bool) -> None:
        if trust:
            self.bridge.call(self.desk.trust(folder), lambda _: self._open(folder), self.folders.refuse)
        else:
            self._open(folder)

    def _open(self, folder: Path) -> None:
        self.setWindowTitle(f"{folder.name or folder} — Paddock")  # the folder by its name (the path on hover)
        self.chat.reset(folder)
        self.stack.setCurrentWidget(self.chat)
        self.bridge.call(self.desk.open(folder, model=self.desk.model), lambda _: self._opened(), self._open_failed)

    def _opened(self) -> None:
        """The folder is open: draw the conversation it carries on, and the earlier ones."""
        self.bridge.call(self.desk.transcript(), self.chat.replay)
        self._show_pictures()
        self._refresh_history()

    def _show_pictures(self) -> None:
        """The pictures kept with the conversation now shown (a reopened one's too)."""
        self.bridge.call(self.desk.pictures(), self.chat.activity.show_pictures)

    def _refresh_history(self) -> None:
        self.bridge.call(self.desk.conversations(), self.chat.set_conversations)

    def _conversation(self, conversation: str | None) -> None:
        def shown(events: list[Replayed]) -> None:
            self.chat.replay(events)
            self._show_pictures()
            self._refresh_history()

        error = lambda msg: self.chat.add_note(msg, error=True)  # noqa: E731
        self.bridge.call(self.desk.open_conversation(conversation), shown, error)

    def _open_failed(self, message: str) -> None:
        self.show_folders()
        self.folders.refuse(message)

    # ------------------------------------------------------------------ chat

    def _send(self, text: str) -> None:
        def failed(message: str) -> None:
            self.chat.add_note(message, error=True)
            self.chat.set_working(False)

        self._sent_at = time.monotonic()
        self.bridge.call(self.desk.send(text), lambda _: self.chat.set_working(False), failed)

    def _tell_if_away(self, what: str) -> None:
        """A long task ended while the person looked elsewhere: say so on the desktop."""
        if self.isActiveWindow() or time.monotonic() - self._sent_at < self.notify_after_s:
            return
        QApplication.alert(self)
        folder = self.desk.folder
        self.bridge.call(notify("Paddock", f"{what} ({folder.name if folder else 'your folder'})."))

    def _restart(self) -> None:
        self.bridge.call(self.desk.restart(), None, lambda msg: self.chat.add_note(msg, error=True))

    def _finish(self) -> None:
        self.chat.finish_button.setEnabled(False)
        self.bridge.call(self.desk.finish(), None, lambda msg: self.chat.add_note(msg, error=True))

    def _answer(self, question_id: str, allow: bool) -> None:
        self.bridge.call(self.desk.answer(question_id, allow), None, lambda msg: self.chat.add_note(msg, error=True))

    def _sandbox_status(self, ev: SandboxStatus) -> None:
        detail = say(ev.detail, "Starting the sandbox" if ev.state is SandboxState.STARTING else "")
        if ev.state is SandboxState.FAILED:
            failure = sandbox_failure(ev.detail)
            detail = failure.message
            if failure.details:
                self.problem.show_problem(failure.for_support())
        self.chat.set_sandbox(ev.state, detail)

    def _on_event(self, ev: DeskEvent) -> None:
        if isinstance(ev, SandboxStatus):
            self._sandbox_status(ev)
        elif isinstance(ev, Activity):
            self.chat.activity.add(ev)
        elif isinstance(ev, TextDelta):
            self.chat.add_text(ev.text)
        elif isinstance(ev, ToolCalled | ToolOutput | ToolFinished):
            self.chat.tool_event(ev)
        elif isinstance(ev, Finished):
            self.chat.set_working(False)
            self._offer_undo()
            self._tell_if_away("The assistant has finished")
            self.bridge.call(self.desk.previews(), self.chat.activity.add_previews)
            self._refresh_history()
        elif isinstance(ev, Failed):
            self._tell_if_away("The assistant stopped before it finished")
            failure = assistant_failure(ev.message)
            self.chat.add_note(failure.message, error=True)
            if failure.details:
                self.problem.show_problem(failure)
            self.chat.set_working(False)
            self._offer_undo()
        elif isinstance(ev, Cancelled):
            self.chat.add_note("Stopped.")
            self.chat.set_working(False)
            self._offer_undo()
        elif isinstance(ev, EgressQuestion):
            self.chat.add_question(ev, self._answer)
        elif isinstance(ev, Notice):
            self.chat.add_note(say(ev.text, "Something unexpected happened in the sandbox."), error=ev.error)
        elif isinstance(ev, SessionSummary):
            self.last_summary = ev
            self.chat.finish_button.setEnabled(True)
            self.summary.show_summary(ev)
            self.stack.setCurrentWidget(self.summary)

    # ------------------------------------------------------------------ summary, settings

    def _offer_undo(self) -> None:
        """ "Undo this" under the turn that just ended (when it has a restore point)."""
        point = self.desk.rewind.turn_point()
        if point is not None and point not in self.chat.turn_undos:
            self.chat.add_turn_undo(point)

    def _undo_turn(self, point: int) -> None:
        error = lambda msg: self.chat.add_note(msg, error=True)  # noqa: E731
        self.bridge.call(self.desk.rewind.undo_turn(point), lambda msg: self.chat.turn_undone(point, msg), error)

    def _revert(self, change: Change) -> None:
        if self.last_summary is None:
            return
        summary = self.last_summary

        async def do() -> str:
            if summary.start_point is not None:  # from the session's restore point
                return await self.desk.rewind.undo_session(summary, change.path)
            return revert(summary, change)

        self.bridge.call(do(), lambda msg: self.summary.reverted(change, msg), self.summary.message.setText)

    def _diff(self, path: str) -> None:
        if self.last_summary is not None:
            self.bridge.call(self.desk.rewind.file_diff(self.last_summary, path), self.summary.show_diff,
                             self.summary.message.setText)  # fmt: skip

    def _undo_all(self) -> None:
        if self.last_summary is not None:
            undo = self.desk.rewind.undo_session(self.last_summary)
            self.bridge.call(undo, self.summary.undone, self.summary.message.setText)

    def open_settings(self) -> None:
        self.settings = SettingsDialog(self.bridge, self)
        self.settings.show()

    def open_schedules(self) -> None:
        """The schedule view, for the open folder (every folder's from the folder page)."""
        folder = self.desk.folder if self.stack.currentWidget() is self.chat else None
        self.schedule_view = ScheduleDialog(self.bridge, self.schedules, folder, self)
        self.schedule_view.show()

    def open_notes(self) -> None:
        self.notes = NotesDialog(self.bridge, self)
        self.notes.show()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the session (and its VM) and the woken sandbox held for the next folder (or its
        wake under way) before the window goes."""
        try:
            self.bridge.engine.run(self.desk.close(), timeout=60)
        except Exception:  # noqa: BLE001 - closing must not be blocked by a failing VM
            pass
        super().closeEvent(event)
