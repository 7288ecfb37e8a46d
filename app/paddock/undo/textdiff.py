"""What changed inside one text file since a restore point, for the window's summary: the
point's copy against the file now, as a unified diff. Nothing is parsed but UTF-8 text; the file is
read without following links (``core.beneath``) and both sides are bounded, in size and in the
time the comparison may take (``paddock.core.linediff``)."""

from __future__ import annotations

from pathlib import Path

from paddock.core import beneath
from paddock.core.beneath import UnsafePath
from paddock.core.linediff import unified
from paddock.undo.store import FILE, UndoError, UndoStore

MAX_BYTES = 1024 * 1024  # larger files are not compared here (restore still works)
MAX_LINES = 400


def text_diff(folder: Path, point_id: int, rel: str, *, root: Path | None = None) -> str:
    """The diff of ``rel`` from point ``point_id`` to now, or a sentence saying why there is none."""
    store = UndoStore(folder, root=root)
    try:
        item = store.point(point_id).items.get(rel)
    except UndoError as exc:
        return exc.message
    if item is None or item.kind != FILE:
        return "The file was not there when the session started, so there is nothing to compare."
    if item.size > MAX_BYTES:
        return "This file is too large to compare here; it can still be restored."
    try:
        with open(store.object_path(item.ref), "rb") as f:
            before_bytes = f.read(MAX_BYTES + 1)
    except OSError:
        return "The copy from the start of the session was not kept, so it cannot be compared."
    try:
        now_bytes = beneath.read_file(folder, rel, MAX_BYTES)
    except (UnsafePath, OSError):
        return "The file as it is now cannot be read (it is gone, too large, or a link)."
    try:
        before, now = before_bytes.decode("utf-8"), now_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return "This is not a text file, so its lines cannot be compared; it can still be restored."
    lines = unified(before.splitlines(), now.splitlines(), ("before the session", "now"), max_lines=MAX_LINES)
    if not lines:
        return "The text is the same as when the session started (only its details, such as its time, changed)."
    return "\n".join(lines)
