"""The window's saved notes (``Desk.notes``, a part of the desk, no Qt): what the assistant kept between sessions,
where each came from and when it expires, and deleting one. The notes live in the host's memory
store (``paddock.assistant.memory``), the same one ``paddock memory`` reviews."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from paddock.assistant.memory import Memory, MemoryStore


@dataclass(frozen=True)
class NoteRow:
    id: str
    text: str
    came_from: str  # "a session on Sales, 3 March 2026"
    expires: str  # "in 29 days"
    everywhere: bool  # loaded on every folder (the person said so), not only the one it came from


def _when(seconds: float) -> str:
    days = round(seconds / 86400)
    if seconds <= 0:
        return "expired"
    if days <= 1:
        return "within a day"
    return f"in {days} days"


def note_row(memory: Memory, now: float | None = None) -> NoteRow:
    made = time.strftime("%-d %B %Y", time.localtime(memory.created))
    folder = Path(memory.folder).name or memory.folder
    return NoteRow(
        memory.id,
        memory.text,
        f"a session on {folder}, {made}",
        _when(memory.expires - (now if now is not None else time.time())),
        memory.scope == "all",
    )


class Notes:
    def store(self) -> MemoryStore:
        return MemoryStore()

    async def list(self) -> list[NoteRow]:
        """The notes the assistant may read, newest first (expired ones are never loaded)."""
        return [note_row(m) for m in reversed(self.store().list())]

    async def forget(self, note_id: str) -> bool:
        return self.store().forget(note_id)
