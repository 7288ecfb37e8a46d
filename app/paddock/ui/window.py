"""The main window: a stack of pages driven by the ``Desk``'s events.

welcome (first run) ─► folder ─► chat ─► summary ─► folder …
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMainWindow, QStackedWidget

from paddock.core.engine import Engine
from paddock.session import (
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
    SandboxStatus,
    SessionSummary,
    TextDelta,
    ToolCalled,
    ToolFinished,
    revert,
)
from paddock.ui.bridge import Bridge
from paddock.ui.chat import ChatPage
from paddock.ui.pages import FolderPage, SummaryPage, WelcomePage
from paddock.ui.settings import SettingsDialog


def _tool_detail(name: str, args: dict[str, object]) -> str:
    if name == "run_command":
        return f"$ {args.get('command', '')}"
    return "\n".join(f"{k}: {str(v)[:2000]}" for k, v in args.items()) or name


class MainWindow(QMainWindow):
    def __init__(self, engine: Engine, desk: Desk) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Paddock")
        self.resize(900, 680)
        self.bridge = Bridge(engine, desk)
        self.desk = desk
        self.stack = QStackedWidget()
        self.setCentralWidget(self.stack)
        self.welcome = WelcomePage()
        self.folders = FolderPage()
        self.chat = ChatPage()
        self.summary = SummaryPage()
        for page in (self.welcome, self.folders, self.chat, self.summary):
            self.stack.addWidget(page)
        self.last_summary: SessionSummary | None = None
        self.settings: SettingsDialog | None = None

        self.bridge.published.connect(self._on_event)
        self.welcome.key_entered.connect(self._store_key)
        self.welcome.proceed.connect(self.show_folders)
        self.folders.chosen.connect(self.choose_folder)
        self.folders.trust_answered.connect(self._trust_answered)
        self.folders.settings_requested.connect(self.open_settings)
        self.chat.send_requested.connect(self._send)
        self.chat.stop_requested.connect(lambda: self.bridge.call(self.desk.stop()))
        self.chat.restart_requested.connect(self._restart)
        self.chat.finish_requested.connect(self._finish)
        self.chat.settings_requested.connect(self.open_settings)
        self.summary.done.connect(self.show_folders)
        self.summary.revert_requested.connect(self._revert)
        self.summary.undo_all_requested.connect(self._undo_all)

        self.stack.setCurrentWidget(self.welcome)
        self.bridge.call(self.desk.first_run(), self._first_run, self._first_run_error)

    # ------------------------------------------------------------------ first run

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
            self.desk.store_key(secret),
            lambda _: self.welcome.key_saved(True, "The key is stored in this computer's keychain."),
            lambda msg: self.welcome.key_saved(False, msg),
        )

    # ------------------------------------------------------------------ folders

    def show_folders(self) -> None:
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
        self.chat.reset(folder)
        self.stack.setCurrentWidget(self.chat)
        self.bridge.call(self.desk.open(folder, model=self.desk.model), None, self._open_failed)

    def _open_failed(self, message: str) -> None:
        self.show_folders()
        self.folders.refuse(message)

    # ------------------------------------------------------------------ chat

    def _send(self, text: str) -> None:
        def failed(message: str) -> None:
            self.chat.add_note(message, error=True)
            self.chat.set_working(False)

        self.bridge.call(self.desk.send(text), lambda _: self.chat.set_working(False), failed)

    def _restart(self) -> None:
        self.bridge.call(self.desk.restart(), None, lambda msg: self.chat.add_note(msg, error=True))

    def _finish(self) -> None:
        self.chat.finish_button.setEnabled(False)
        self.bridge.call(self.desk.finish(), None, lambda msg: self.chat.add_note(msg, error=True))

    def _answer(self, question_id: str, allow: bool) -> None:
        self.bridge.call(self.desk.answer(question_id, allow), None, lambda msg: self.chat.add_note(msg, error=True))

    def _on_event(self, ev: DeskEvent) -> None:
        if isinstance(ev, SandboxStatus):
            self.chat.set_sandbox(ev.state, ev.detail)
        elif isinstance(ev, TextDelta):
            self.chat.add_text(ev.text)
        elif isinstance(ev, ToolCalled):
            self.chat.add_tool(ev.call_id, ev.summary, _tool_detail(ev.name, ev.input))
        elif isinstance(ev, ToolFinished):
            self.chat.finish_tool(ev.call_id, not ev.is_error, ev.summary, ev.detail)
        elif isinstance(ev, Finished):
            self.chat.set_working(False)
        elif isinstance(ev, Failed):
            self.chat.add_note(f"The assistant stopped: {ev.message}", error=True)
            self.chat.set_working(False)
        elif isinstance(ev, Cancelled):
            self.chat.add_note("Stopped.")
            self.chat.set_working(False)
        elif isinstance(ev, EgressQuestion):
            self.chat.add_question(ev, self._answer)
        elif isinstance(ev, Notice):
            self.chat.add_note(ev.text, error=ev.error)
        elif isinstance(ev, SessionSummary):
            self.last_summary = ev
            self.chat.finish_button.setEnabled(True)
            self.summary.show_summary(ev)
            self.stack.setCurrentWidget(self.summary)

    # ------------------------------------------------------------------ summary, settings

    def _revert(self, change: Change) -> None:
        if self.last_summary is None:
            return
        summary = self.last_summary

        async def do() -> str:
            if summary.start_point is not None:  # from the session's restore point
                return await self.desk.undo_session(summary, change.path)
            return revert(summary, change)

        self.bridge.call(do(), lambda msg: self.summary.reverted(change, msg), self.summary.message.setText)

    def _undo_all(self) -> None:
        if self.last_summary is not None:
            undo = self.desk.undo_session(self.last_summary)
            self.bridge.call(undo, self.summary.undone, self.summary.message.setText)

    def open_settings(self) -> None:
        self.settings = SettingsDialog(self.bridge, self)
        self.settings.show()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the session (and its VM) before the window goes."""
        if self.desk.folder is not None:
            try:
                self.bridge.engine.run(self.desk.close(), timeout=60)
            except Exception:  # noqa: BLE001 - closing must not be blocked by a failing VM
                pass
        super().closeEvent(event)
