"""What the window shows when a session ends (no Qt): the folder's changes (classified by
``paddock.undo.changes``), the questions asked, the copies kept for *Revert*, the restore point to
undo to and the pictures of the files made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paddock.desk.previews import Preview
from paddock.undo.changes import Change


@dataclass(frozen=True)
class SessionSummary:
    folder: Path
    changes: list[Change]
    questions_asked: int
    backup: Path  # copies of the files that could run on the host, as they were before the session
    start_point: int | None = None  # the restore point made when the session started (None: undo is off)
    pictures: tuple[Preview, ...] = ()  # drawn in the sandbox, of files made or changed, as they are now

    @property
    def risky(self) -> list[Change]:
        return [c for c in self.changes if c.risk]
