"""The desktop app's engine: everything the window does, without Qt.

``Desk`` lives on the engine thread (one asyncio loop, ``paddock.core.engine``)
and publishes typed events; the window subscribes through the small bridge in
``paddock.ui.bridge`` and never touches the sandbox, the keychain or policy
itself. Tests and scripts can drive a ``Desk`` with no UI at all.

    first run ─► choose folder ─► (trust?) ─► open ─► chat … ─► finish ─► summary

States of the sandbox, as the window shows them::

    STOPPED ─open()─► STARTING ─► READY ─finish()─► STOPPED
                          └──────────┴──► FAILED(reason) ─restart()─► STARTING
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paddock.assistant.loop import AssistantEvent, AssistantSession
from paddock.core.errors import PaddockError
from paddock.core.paths import data_dir
from paddock.core.signal import Signal
from paddock.desk.activity import Activity, activity
from paddock.desk.history import ConversationRow, History, Replayed, replay
from paddock.desk.notes import Notes
from paddock.desk.plain import conflicts_notice
from paddock.desk.previews import PREVIEW_WAIT_S, Preview, for_summary, render, wanted
from paddock.desk.recent import RecentFolders
from paddock.desk.rewind import Rewind
from paddock.desk.settings import Settings
from paddock.desk.summary import SessionSummary
from paddock.policy import EffectivePolicy, PolicyError, TrustStore, behaviour_files
from paddock.policy import load as load_policy
from paddock.remote import SyncReport
from paddock.sandbox import Sandbox, SandboxFailed, WarmPool, ensure_snapshot, snapshots_enabled
from paddock.session import model_choice
from paddock.session.composer import AskThePerson, Composed, SessionPlan, compose
from paddock.session.egress_questions import EgressQuestion
from paddock.session.runner import EntryPoint, SessionRunner
from paddock.undo.changes import Entry, diff, list_folder

log = logging.getLogger(__name__)


class SandboxState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"


# ---------------------------------------------------------------------- events


@dataclass(frozen=True)
class SandboxStatus:
    state: SandboxState
    detail: str


@dataclass(frozen=True)
class Notice:
    """Something the person should read, in plain words (an error or a result)."""

    text: str
    error: bool = False


DeskEvent = AssistantEvent | SandboxStatus | SessionSummary | EgressQuestion | Notice | Activity


@dataclass(frozen=True)
class FolderCheck:
    folder: Path
    allowed: bool
    reason: str
    trusted: bool
    behaviour: list[str]  # files inside that would change the agent's behaviour once trusted


@dataclass
class _Open:
    """What belongs to the folder that is open now: the session the composer made, and the window's own."""

    session: Composed
    watcher: asyncio.Task[None] | None = None
    work: asyncio.Task[str] | None = None
    previewed: dict[str, Entry] = field(default_factory=dict)  # files drawn, as they were then
    drawn: dict[str, tuple[Preview, Entry | None]] = field(default_factory=dict)  # for the summary

    @property
    def runner(self) -> SessionRunner:
        return self.session.runner

    @property
    def agent(self) -> AssistantSession | None:
        return self.session.agent

    @property
    def before(self) -> dict[str, Entry]:
        return self.session.before

    @property
    def folder(self) -> Path:
        return self.runner.folder

    @property
    def policy(self) -> EffectivePolicy:
        return self.runner.policy

    @property
    def sandbox(self) -> Sandbox | None:
        return self.runner.sandbox


class Desk:
    """The app engine. Every coroutine runs on the engine loop; ``subscribe`` listeners are
    called there too (the UI bridge moves them to the Qt thread). Its parts: ``settings`` (keys,
    endpoints, the settings page), ``notes`` (the notes kept between sessions), ``rewind`` (undo
    from the window), ``recent`` (the folders opened lately)."""

    def __init__(
        self,
        *,
        provider_factory: model_choice.ProviderFactory | None = None,
        policy_loader: Callable[..., EffectivePolicy] | None = None,
    ) -> None:
        """``policy_loader`` stands in for the policy files (tests, embedding code); by default the
        managed, recommended, user and (once trusted) folder tiers are read as everywhere else.
        ``provider_factory`` makes the model provider from the resolved target and key."""
        self.events: Signal[DeskEvent] = Signal("desk event")
        self._load_policy = policy_loader or load_policy
        self._provider_factory = provider_factory
        self._open: _Open | None = None
        self.sandbox_state = SandboxState.STOPPED
        self.model: str | None = None  # [ENDPOINT:]MODEL for the next folder opened (None: policy's default)
        self.recent = RecentFolders(data_dir() / "recent-folders.json")
        self.settings = Settings(self._load_policy)
        self.notes = Notes()
        self.rewind = Rewind(lambda: self._open.session if self._open else None, lambda: self.busy, self._load_policy)
        self._warming: asyncio.Future[Path] | None = None
        self.pool = WarmPool()  # one sandbox woken ahead of the folder while the window waits
        self._reconnecting: asyncio.Future[None] | None = None  # after a sandbox host's connection dropped

    # ------------------------------------------------------------------ events

    def subscribe(self, listener: Callable[[DeskEvent], None]) -> None:
        self.events.connect(listener)

    def _emit(self, event: DeskEvent) -> None:
        self.events.emit(event)

    def _status(self, state: SandboxState, detail: str) -> None:
        if state is not self.sandbox_state:
            log.debug("window's sandbox: %s -> %s (%s)", self.sandbox_state.value, state.value, detail)
        self.sandbox_state = state
        self._emit(SandboxStatus(state, detail))

    # ------------------------------------------------------------------ first run and keys

    async def warm(self) -> None:
        """Prepare the saved sandbox in the background as soon as the app opens, so that choosing
        a folder wakes a sandbox instead of booting one. Failing here costs only speed."""
        if not snapshots_enabled() or self._warming is not None:
            return
        warming = self._warming = asyncio.ensure_future(ensure_snapshot())
        with contextlib.suppress(PaddockError, OSError):
            await asyncio.shield(warming)
            if self._open is None:  # a folder is chosen: that one woke its own
                self.pool.fill()

    async def _warmed(self) -> None:
        if self._warming is not None and not self._warming.done():
            self._status(SandboxState.STARTING, "Getting the sandbox ready for the first time")
            with contextlib.suppress(PaddockError, OSError):
                await asyncio.shield(self._warming)

    # ------------------------------------------------------------------ folders

    def recent_folders(self) -> list[Path]:
        return self.recent.list()

    async def check_folder(self, folder: Path) -> FolderCheck:
        """May this folder be shared, and is it trusted? Reads only names inside it, never contents."""
        try:
            policy = self._load_policy()
        except PolicyError as exc:
            return FolderCheck(folder, False, f"No session can start: {exc.message}", False, [])
        decision = policy.check_folder(folder)
        if not decision.allowed:
            return FolderCheck(folder, False, decision.reason, False, [])
        real = decision.folder or folder
        trusted, behaviour = await asyncio.to_thread(lambda: (TrustStore().is_trusted(real), behaviour_files(real)))
        return FolderCheck(real, True, decision.reason, trusted, behaviour)

    async def trust(self, folder: Path) -> None:
        TrustStore().trust(folder)

    # ------------------------------------------------------------------ session

    @property
    def folder(self) -> Path | None:
        return self._open.folder if self._open else None

    @property
    def busy(self) -> bool:
        return bool(self._open and self._open.work and not self._open.work.done())

    async def open(self, folder: Path, *, model: str | None = None) -> None:
        """Open ``folder``: check policy, boot the sandbox (progress as events), start the agent.

        A folder policy denies raises ``PaddockError`` before anything starts. A sandbox that
        fails to boot is reported as ``FAILED``; the folder stays open so ``restart`` can retry.
        """
        if self._open is not None:
            await self.finish()
        plan = SessionPlan(
            EntryPoint.WINDOW, AskThePerson(self._emit), assistant=True, model=model or self.model, summary=True,
            warm=self.pool, policy_loader=self._load_policy, provider_factory=self._provider_factory,
            warn=lambda text: self._emit(Notice(text)), on_event=self._emit,
            alert=lambda text: self._emit(Notice(text, True)),
        )  # fmt: skip
        try:
            session = await compose(folder, plan)  # a refused folder or model: recorded, then raised
        except SandboxFailed as exc:  # a folder policy denies: said before anything starts
            raise PaddockError(exc.message, hint=exc.hint) from exc
        self.recent.remember(session.folder)
        self._open = _Open(session)
        session.runner.auditor.guest_events.connect(lambda ev: self._emit(activity(ev)))
        try:
            await self._boot()
        except BaseException:  # no model key, say: nothing stays open
            self._open = None
            await session.close(outcome="failed")
            raise

    async def _boot(self) -> None:
        opened = self._require_open()
        await self._warmed()
        self._status(SandboxState.STARTING, "Starting the sandbox")
        try:
            sandbox = await opened.session.boot(on_progress=lambda msg: self._status(SandboxState.STARTING, msg))
        except SandboxFailed as exc:
            self._status(SandboxState.FAILED, str(exc))
            return
        opened.watcher = asyncio.ensure_future(self._watch(sandbox))
        sandbox.sync_done.connect(self._synced)
        self._status(SandboxState.READY, f"Ready ({sandbox.where})")

    def _synced(self, report: SyncReport) -> None:
        if report.conflicts:
            self._emit(Notice(conflicts_notice(report.conflicts)))

    async def _watch(self, sandbox: Sandbox) -> None:
        """A VM that dies mid-session is reported; the app stays up and can restart it."""
        reason = await sandbox.vm.failed()
        if self._open is not None and self._open.sandbox is sandbox:
            self._status(SandboxState.FAILED, reason or "The sandbox stopped unexpectedly.")
            if sandbox.host_name is not None:  # a sandbox host: say so, then connect again
                self._status(SandboxState.STARTING, f"{reason} Reconnecting to {sandbox.host_name}…")
                self._reconnecting = asyncio.ensure_future(self.restart())

    def _require_open(self) -> _Open:
        if self._open is None:
            raise PaddockError("Choose a folder first.")
        return self._open

    async def restart(self) -> None:
        """Stop whatever is left of the sandbox and boot a new one on the same folder."""
        self._require_open()
        await self._stop_work()
        await self._close_sandbox()
        await self._boot()

    async def send(self, text: str) -> str | None:
        """Run one message to the assistant's final answer. Returns None when stopped or failed
        (the reason arrives as an event)."""
        opened = self._require_open()
        if opened.agent is None or opened.sandbox is None or not opened.sandbox.alive:
            raise PaddockError("The sandbox is not running. Press Restart to start it again.")
        if self.busy:
            raise PaddockError("The assistant is still working on the previous message.")
        opened.work = asyncio.ensure_future(opened.agent.send(text))
        try:
            return await asyncio.shield(opened.work)
        except asyncio.CancelledError:
            if opened.work.cancelled():
                return None
            raise
        except (PaddockError, SandboxFailed):
            return None  # the agent already published Failed with the reason

    async def stop(self) -> None:
        """Stop what the assistant is doing now: the model call, or the command in the guest."""
        await self._stop_work()

    async def _stop_work(self) -> None:
        opened = self._open
        if opened is None or opened.work is None or opened.work.done():
            return
        opened.work.cancel()
        with contextlib.suppress(BaseException):
            await opened.work

    async def answer(self, question_id: str, allow: bool) -> None:
        """The person's answer to an egress question: yes adds a grant for this session only."""
        if not await self._require_open().session.answer(question_id, allow):
            raise PaddockError("There is no question waiting.")

    @property
    def questions_asked(self) -> int:
        return len(self._open.session.questions) if self._open is not None else 0

    async def previews(self) -> list[Preview]:
        """Pictures of the files this session made or changed since the last ones, drawn in the sandbox."""
        opened = self._require_open()
        if opened.sandbox is None or not opened.sandbox.alive or self.busy:
            return []
        paths = await asyncio.to_thread(wanted, opened.before, opened.folder, opened.previewed)
        found = await render(opened.sandbox, paths)
        opened.drawn.update((p.path, (p, opened.previewed.get(p.path))) for p in found)
        if found:  # kept with the conversation, to show again when it is reopened
            await asyncio.to_thread(History(opened.folder).pictures.keep, found)
        return found

    async def pictures(self) -> list[Preview]:
        """The pictures kept with the conversation in use (drawn in earlier sessions too)."""
        return await asyncio.to_thread(History(self._require_open().folder).pictures.load)

    # ------------------------------------------------------------------ conversations

    async def conversations(self) -> list[ConversationRow]:
        """The open folder's conversations: the one in use first, then earlier ones."""
        if self._open is None:
            return []
        agent = self._open.agent
        return History(self._open.folder).rows(agent.messages if agent else None)

    async def transcript(self) -> list[Replayed]:
        """The conversation in use, to draw when a folder opens (it carries on where it was)."""
        opened = self._require_open()
        return replay(opened.agent.messages if opened.agent else History(opened.folder).store.load())

    async def open_conversation(self, conversation: str | None) -> list[Replayed]:
        """Start a new conversation (None) or reopen an earlier one; the one in use is kept."""
        opened = self._require_open()
        if self.busy:
            raise PaddockError("The assistant is still working. Wait until it has finished, or press Stop.")
        history = History(opened.folder)
        messages = history.reopen(conversation) if conversation else []
        if conversation is None:
            history.put_aside()
        if opened.agent is not None:
            opened.agent.messages = messages
            opened.agent.repair()
        return replay(messages)

    async def finish(self) -> SessionSummary:
        """End the session: stop the assistant and the sandbox, then say what changed."""
        opened = self._require_open()
        await self._stop_work()
        with contextlib.suppress(Exception):  # pictures of what changed last: never keep the session open
            await asyncio.wait_for(self.previews(), PREVIEW_WAIT_S)
        await self._close_sandbox()
        after = await asyncio.to_thread(list_folder, opened.folder)
        first, changes = opened.runner.undo.first, diff(opened.before, after)
        pictures = for_summary(opened.drawn, after, changes)
        assert opened.session.backup is not None  # the window's plan asks for a change summary
        summary = SessionSummary(opened.folder, changes, self.questions_asked, opened.session.backup,
                                 first.point.id if first else None, pictures)  # fmt: skip
        await opened.session.close()  # the session's end, and its model client closed
        self._open = None
        self.pool.fill()  # the next folder's, woken while the person chooses it
        self._emit(summary)
        return summary

    async def _close_sandbox(self) -> None:
        opened = self._open
        if opened is None:
            return
        if opened.watcher is not None:
            opened.watcher.cancel()
            with contextlib.suppress(BaseException):
                await opened.watcher
        opened.watcher = None
        await opened.session.close_sandbox()
        if self.sandbox_state is not SandboxState.FAILED:
            self._status(SandboxState.STOPPED, "The sandbox is stopped")

    async def close(self) -> None:
        """The window is closing: end the session if one is open; stop the woken sandbox."""
        if self._open is not None:
            await self.finish()
        await self.pool.close()
