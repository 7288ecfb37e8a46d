"""Undo, for a session: restore points at the session's start and each turn's, and putting the
folder back — every one audited. ``SessionRunner`` owns one, so every entry point gets it.

    paddock undo --folder DIR        the newest point (not one made by an undo) that differs from now
    paddock undo --to ID             that point
    paddock undo --file PATH         that file, from the newest point where it differs from now
    every undo first makes a "before undo" point: an undo can itself be undone (--to that point)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from paddock.core.errors import PaddockError
from paddock.core.text import shown
from paddock.policy import EffectivePolicy
from paddock.sandbox import Sandbox
from paddock.session.auditing import SessionAuditor
from paddock.undo.keeper import LazyKeeper
from paddock.undo.restore import Restored, differs, restore
from paddock.undo.store import Made, Point, UndoError, UndoStore, scan
from paddock.vm import Guard

log = logging.getLogger(__name__)
START, TURN, BEFORE_UNDO = "start", "turn", "before-undo"


@dataclass(frozen=True)
class PointInfo:
    """One restore point, for ``paddock undo --list`` and the window."""

    id: int
    time: float
    kind: str
    label: str
    touched: list[str]  # what changed from this point to the next one (or to now, for the newest)
    unsaved: int


class FolderUndo:
    """The restore points of a session's folder."""

    def __init__(self, folder: Path, policy: EffectivePolicy, auditor: SessionAuditor, *, root: Path | None = None):
        self.store = UndoStore(folder, budget_mb=policy.undo_budget_mb, root=root)
        self.enabled = policy.undo_budget_mb != 0
        self.auditor = auditor
        self.warn: Callable[[str], None] = lambda text: log.warning("%s", text)
        self.last: Made | None = None
        self.first: Made | None = None  # this session's first point (the window's "Undo everything")
        self.keeper = LazyKeeper(self.store)  # what the change guard asks (``paddock.undo.keeper``)
        self.guard: Guard | None = None  # the session's change guard: points are lazy while it runs

    @property
    def lazy(self) -> bool:
        return self.guard is not None and self.guard.active

    async def attach_guard(self, sandbox: Sandbox, start: Made | None) -> None:
        """After the boot: with the change guard running, the (lazy) start point is watched from
        now; without it, a point that copies is made instead, as before the guard existed."""
        if not self.enabled:
            return
        guard, why = sandbox.change_guard()
        if guard is not None and start is not None:
            self.guard = guard
            self.store.on_point = self.keeper.arm
            await asyncio.to_thread(self._arm, start.point)
            return
        why = why or "this folder-sharing daemon is not guarded"
        log.warning("restore points copy the folder: changes are not guarded (%s)", why)
        self.auditor.restore_point({"paddock.undo.kind": START, "paddock.undo.unguarded": shown(why)})
        if start is not None and start.lazy_files:
            await self.point(START, start.point.label + ", copied: the folder's changes are not guarded")

    def _arm(self, point: Point) -> None:
        with self.store.locked():
            self.keeper.arm(point)

    async def point(self, kind: str, label: str, *, lazy: bool | None = None) -> Made | None:
        """Make a restore point now (in a worker thread). One that cannot be made stops what was about
        to happen: a turn does not run without its restore point. A point is lazy (a listing, no
        copy) when the change guard runs, or when asked (the session's start, made while the VM
        boots: ``attach_guard`` follows it; an undo's "before undo" point: the restore keeps what
        it replaces)."""
        if not self.enabled:
            return None
        lazy = self.lazy if lazy is None else lazy
        eager = self.guard.writers if self.guard is not None else None
        lost = self.keeper.take_lost()
        kept = (self.keeper.kept_files, self.keeper.kept_bytes, self.keeper.linked_files)
        try:
            made = await asyncio.to_thread(
                self.store.make, kind, label, self.auditor.session_id, lazy=lazy, eager=eager
            )
        except (OSError, PaddockError) as exc:
            why = exc.message if isinstance(exc, PaddockError) else (exc.strerror or str(exc))
            self.auditor.restore_point({"paddock.undo.kind": kind, "paddock.undo.error": why})
            raise UndoError(f"Paddock could not make a restore point of {self.store.folder}, so it stopped: {why}",
                            hint="Free some disk space, or ask your admin about the undo budget.") from exc  # fmt: skip
        self.last = made
        self.first = self.first or made
        p = made.point
        self.auditor.restore_point({
            "paddock.undo.point": p.id, "paddock.undo.kind": kind, "paddock.undo.label": shown(p.label),
            "paddock.undo.entries": len(p.items), "paddock.undo.copied_files": made.copied_files,
            "paddock.undo.copied_bytes": made.copied_bytes, "paddock.undo.unsaved": len(p.unsaved),
            "paddock.undo.dropped": made.dropped, "paddock.duration_s": round(made.seconds, 4),
            "paddock.undo.lazy_files": made.lazy_files, "paddock.undo.guarded": self.lazy,
            "paddock.undo.guard_kept_files": kept[0], "paddock.undo.guard_kept_bytes": kept[1],
            "paddock.undo.guard_linked_files": kept[2], "paddock.undo.guard_lost": len(lost)})  # fmt: skip
        if lost:
            self.warn(f"{len(lost)} file(s) changed since the last restore point could not be kept first (the "
                      "undo budget was full, or something outside Paddock had changed them); an undo to an "
                      "earlier point cannot put them back.")  # fmt: skip
        for text in made.warnings:
            self.warn(text)
        return made

    # ------------------------------------------------------------------ looking

    def list(self) -> list[PointInfo]:
        points = self.store.points()
        out = []
        now = scan(self.store.folder) if points else {}
        canon = self.store.canon()
        for i, p in enumerate(points):
            after = points[i + 1].items if i + 1 < len(points) else now
            out.append(PointInfo(p.id, p.time, p.kind, p.label, differs(p.items, after, canon), len(p.unsaved)))
        return out

    # ------------------------------------------------------------------ undoing

    def _target(self, to: int | None, file: str | None) -> Point:
        if to is not None:
            return self.store.point(to)
        points = self.store.points()
        if not points:
            raise UndoError(f"There are no restore points for {self.store.folder} yet, so there is nothing to undo.")
        now = scan(self.store.folder)
        canon = self.store.canon()
        for p in reversed(points):
            if p.kind == BEFORE_UNDO:
                continue
            if file is None and differs(p.items, now, canon):
                return p
            if file is not None and differs({k: v for k, v in p.items.items() if k == file},
                                            {k: v for k, v in now.items() if k == file}, canon):  # fmt: skip
                return p
        what = f"{file} is as every restore point has it" if file else "the folder is as its last restore point has it"
        raise UndoError(f"Nothing to undo: {what}.", hint="paddock undo --list shows the restore points.")

    async def undo(self, *, to: int | None = None, file: str | None = None) -> Restored:
        """Put the folder (or ``file``) back as a point has it, after a "before undo" point."""
        if file is not None:
            pure = PurePosixPath(file)
            if pure.is_absolute() or ".." in pure.parts or not pure.parts:
                raise UndoError(f"{file!r} is not a path inside the folder; give it relative to the folder.")
            file = str(pure)
        target = await asyncio.to_thread(self._target, to, file)
        label = f"before undoing to point {target.id}" + (f" ({file})" if file else "")
        before = await self.point(BEFORE_UNDO, label, lazy=True)
        t0 = time.perf_counter()
        done = await asyncio.to_thread(self._restore_locked, target, file)
        self.auditor.undone({
            "paddock.undo.point": target.id, "paddock.undo.before_point": before.point.id if before else 0,
            "file.path": shown(file) if file else "", "paddock.undo.removed": len(done.removed),
            "paddock.undo.written": len(done.written), "paddock.undo.failed": [shown(f) for f, _ in done.failed][:50],
            "paddock.duration_s": round(time.perf_counter() - t0, 4)})  # fmt: skip
        return done

    def _restore_locked(self, target: Point, file: str | None) -> Restored:
        with self.store.locked():
            return restore(self.store, target, file)
