"""Rewind: undo as the window offers it, without Qt (``Desk.rewind``, a part of the desk): put the
folder, or one file, back as it was when the session started, or as it was before one message
("Undo this" under a turn), through the same audited path as ``paddock undo`` (the session's
``FolderUndo``; the restore points themselves are ``paddock.undo``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from paddock.core.errors import PaddockError
from paddock.core.text import shown
from paddock.desk.summary import SessionSummary
from paddock.session.composer import NO_QUESTIONS, AnswerNo, Composed, SessionPlan, compose
from paddock.session.runner import EntryPoint, PolicyLoader
from paddock.session.undoing import TURN
from paddock.undo.textdiff import text_diff

GUEST_CACHE_S = 1.2  # how long the guest trusts what it cached of the shared folder (cache=auto)


class Rewind:
    """The window's undo. ``session`` is the desk's open session (None: no folder is open); ``busy``
    says whether the assistant is working."""

    def __init__(
        self, session: Callable[[], Composed | None], busy: Callable[[], bool], load_policy: PolicyLoader
    ) -> None:
        self._session = session
        self._busy = busy
        self._load_policy = load_policy

    def turn_point(self) -> int | None:
        """The restore point made before the latest message ran (None: undo is off, or none yet)."""
        session = self._session()
        made = session.runner.undo.last if session is not None else None
        return made.point.id if made is not None and made.point.kind == TURN else None

    async def undo_turn(self, point: int) -> str:
        """Put the folder back as it was before one message ran (what came after it goes too);
        audited, and itself undoable. The sandbox sees the files as they are now at once."""
        session = self._session()
        if session is None:
            raise PaddockError("Choose a folder first.")
        if self._busy():
            raise PaddockError("The assistant is still working. Wait until it has finished, or press Stop.")
        done = await session.runner.undo.undo(to=point)
        sandbox = session.sandbox
        if sandbox is not None and sandbox.alive and not await sandbox.guest.forget_cached():
            await asyncio.sleep(GUEST_CACHE_S)  # an older guest: its cached view of the folder expires
        if done.failed:
            names = ", ".join(f"{shown(f)} ({why})" for f, why in done.failed[:5])
            return f"Put back, except {len(done.failed)} file(s) that could not be: {names}."
        if not done.touched:
            return "Nothing to undo: the folder is as it was before that message."
        return f"Undone: the folder is as it was before that message ({done.touched} file(s) put back or removed)."

    async def file_diff(self, summary: SessionSummary, path: str) -> str:
        """How a text file changed during the session (a unified diff), or why that cannot be shown."""
        if summary.start_point is None:
            return "This session has no restore point to compare with (undo is off in policy)."
        return await asyncio.to_thread(text_diff, summary.folder, summary.start_point, path)

    async def undo_session(self, summary: SessionSummary, path: str | None = None) -> str:
        """Put the folder (or one file) back as it was when the session started; audited like
        ``paddock undo``, and itself undoable. Returns what was done, in plain words."""
        if summary.start_point is None:
            raise PaddockError("This session has no restore point to go back to (undo is off in policy).")
        plan = SessionPlan(EntryPoint.UNDO, AnswerNo(NO_QUESTIONS), policy_loader=self._load_policy)
        session = await compose(summary.folder, plan)
        try:
            done = await session.runner.undo.undo(to=summary.start_point, file=path)
        finally:
            await session.close()
        if done.failed:
            names = ", ".join(f"{shown(f)} ({why})" for f, why in done.failed[:5])
            return f"Put back, except {len(done.failed)} file(s) that could not be: {names}."
        if path is None:
            return f"Everything from this session was undone ({done.touched} file(s) put back or removed)."
        if path in done.removed and path not in done.written:
            return f"Deleted {shown(path)}: it was not there when the session started."
        return f"Put back {shown(path)} as it was when the session started."
