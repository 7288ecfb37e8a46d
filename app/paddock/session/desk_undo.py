"""Undo from the window, without Qt (a part of ``Desk``): put the folder, or one file, back as it was
when the session started, through the same audited path as ``paddock undo``."""

from __future__ import annotations

from collections.abc import Callable

from paddock.core.errors import PaddockError
from paddock.core.text import shown
from paddock.policy import EffectivePolicy
from paddock.session.runner import EntryPoint, SessionRunner, decide
from paddock.session.summary import SessionSummary


class DeskUndo:
    _load_policy: Callable[..., EffectivePolicy]

    async def undo_session(self, summary: SessionSummary, path: str | None = None) -> str:
        """Put the folder (or one file) back as it was when the session started; audited like
        ``paddock undo``, and itself undoable. Returns what was done, in plain words."""
        if summary.start_point is None:
            raise PaddockError("This session has no restore point to go back to (undo is off in policy).")
        decided = decide(summary.folder, policy_loader=self._load_policy)
        runner = await SessionRunner.begin(decided, EntryPoint.UNDO)
        try:
            done = await runner.undo.undo(to=summary.start_point, file=path)
        finally:
            await runner.close()
        if done.failed:
            names = ", ".join(f"{shown(f)} ({why})" for f, why in done.failed[:5])
            return f"Put back, except {len(done.failed)} file(s) that could not be: {names}."
        if path is None:
            return f"Everything from this session was undone ({done.touched} file(s) put back or removed)."
        if path in done.removed and path not in done.written:
            return f"Deleted {shown(path)}: it was not there when the session started."
        return f"Put back {shown(path)} as it was when the session started."
