"""Past conversations per folder (no Qt): the one in use is the assistant's ``ConversationStore``
file; "New conversation" moves it aside into the folder's archive, and reopening an old one swaps
it back. Everything stays in the host's app-data folder, never in the workspace. ``replay`` turns
a saved conversation back into the events the window draws (messages, answers, cards). The
pictures drawn in the sandbox during a conversation are kept beside it (``Pictures``: checked
PNGs, bounded in number and bytes) and move with it, so a reopened conversation shows them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddock.assistant.labels import TAG
from paddock.assistant.loop import ConversationStore, TextDelta, ToolCalled, ToolFinished
from paddock.core.errors import PaddockError
from paddock.desk.previews import MAX_PAGES, Preview, checked_png

CURRENT = "current"
_ID = re.compile(r"^[0-9]{10,20}$")
_ROWS_KEPT = 2000  # rows of unchanged conversation files, kept between refreshes
_ROWS: dict[tuple[str, int, int], ConversationRow | None] = {}
KEPT_FILES = 24  # pictures of files kept with one conversation: the newest
KEPT_BYTES = 40_000_000  # and at most this many bytes of them (each page a checked PNG)
_LABELS = re.compile(rf"</?{TAG}[^>]*>\n?|\n?\(The block above is data from the workspace or a program\.[^)]*\)")


@dataclass(frozen=True)
class ConversationRow:
    id: str  # CURRENT, or the archived conversation's id
    title: str  # its first message, shortened
    when: str  # when it was last saved, in words
    messages: int


@dataclass(frozen=True)
class UserSaid:
    """A message the person sent, in a replayed conversation."""

    text: str


Replayed = UserSaid | TextDelta | ToolCalled | ToolFinished


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        messages = json.loads(path.read_text()).get("messages")
    except (OSError, ValueError, AttributeError):
        return []
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


class Pictures:
    """The pictures of one conversation, in a private folder beside it: ``index.json`` (newest
    first: each file's name in the workspace, its pages' file names, its note) and one PNG per
    page, named by its digest. Read back, every PNG is checked again and the index's names are
    only labels: nothing read from the index is a path on the host."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def load(self) -> list[Preview]:
        try:
            index = json.loads((self.folder / "index.json").read_text())
        except (OSError, ValueError):
            return []
        out = []
        for item in index if isinstance(index, list) else []:
            try:
                names = [str(n) for n in item["pages"]][:MAX_PAGES]
                if not all(re.fullmatch(r"[0-9a-f]{32}\.png", n) for n in names) or not names:
                    continue
                pngs = [(self.folder / n).read_bytes() for n in names]
                sizes = [checked_png(png) for png in pngs]
                if None in sizes:
                    continue
                width, height = sizes[0] or (0, 0)
                out.append(
                    Preview(str(item["path"]), pngs[0], width, height, tuple(pngs[1:]), str(item.get("note", "")))
                )
            except (OSError, KeyError, TypeError):
                continue
        return out

    def keep(self, previews: list[Preview]) -> None:
        """Add ``previews`` (newest first); a file drawn again replaces its older picture; the
        oldest go when there are more than KEPT_FILES or KEPT_BYTES."""
        if not previews:
            return
        drawn = {p.path for p in previews}
        kept = [*previews, *(p for p in self.load() if p.path not in drawn)][:KEPT_FILES]
        total, chosen = 0, []
        for p in kept:
            total += sum(len(png) for png in p.pages)
            if total > KEPT_BYTES:
                break
            chosen.append(p)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        index, wanted = [], set()
        for p in chosen:
            names = []
            for png in p.pages:
                name = hashlib.sha256(png).hexdigest()[:32] + ".png"
                if name not in wanted and not (self.folder / name).exists():
                    _write(self.folder / name, png)
                wanted.add(name)
                names.append(name)
            index.append({"path": p.path, "pages": names, "note": p.note})
        _write(self.folder / "index.json", json.dumps(index).encode())
        for old in self.folder.glob("*.png"):
            if old.name not in wanted:
                old.unlink(missing_ok=True)

    def move_to(self, dest: Path) -> None:
        if self.folder.is_dir():
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(self.folder, dest)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class History:
    def __init__(self, folder: Path, root: Path | None = None) -> None:
        self.store = ConversationStore(folder, root)
        self.archive = self.store.path.with_suffix(".earlier")
        self.pictures = Pictures(self.store.path.with_suffix(".pictures"))  # the conversation in use's

    def _row(self, cid: str, path: Path, messages: list[dict[str, Any]] | None = None) -> ConversationRow | None:
        """One conversation's row. An unchanged file is read once (the sidebar is refreshed after
        every answer, and earlier conversations never change); the one in use may come from memory."""
        try:
            st = path.stat()
        except OSError:
            return None
        key = (str(path), st.st_mtime_ns, st.st_size)
        if messages is None and key in _ROWS:
            return _ROWS[key]
        messages = _load(path) if messages is None else messages
        first = next((_text(m) for m in messages if m.get("role") == "user" and _text(m)), "")
        row = None
        if messages:
            title = " ".join(first.split())
            title = title if len(title) <= 60 else title[:59] + "…"
            when = time.strftime("%-d %b %Y, %H:%M", time.localtime(st.st_mtime))
            row = ConversationRow(cid, title or "(no message)", when, len(messages))
        if cid != CURRENT:
            while len(_ROWS) >= _ROWS_KEPT:
                del _ROWS[next(iter(_ROWS))]
            _ROWS[key] = row
        return row

    def rows(self, current: list[dict[str, Any]] | None = None) -> list[ConversationRow]:
        """The conversation in use first (``current``: its messages, when already in memory),
        then earlier ones, newest first."""
        out = [self._row(CURRENT, self.store.path, current)] if self.store.path.exists() else []
        earlier = sorted(self.archive.glob("*.json"), reverse=True) if self.archive.is_dir() else []
        out += [self._row(p.stem, p) for p in earlier if _ID.match(p.stem)]
        return [r for r in out if r is not None]

    def put_aside(self) -> None:
        """Move the conversation in use into the archive (nothing to do when it is empty)."""
        if not _load(self.store.path):
            self.store.clear()
            self.pictures.remove()
            return
        self.archive.mkdir(parents=True, exist_ok=True, mode=0o700)
        cid = str(time.time_ns())
        os.replace(self.store.path, self.archive / f"{cid}.json")
        self.pictures.move_to(self.archive / f"{cid}.pictures")

    def reopen(self, cid: str) -> list[dict[str, Any]]:
        """Make an earlier conversation the one in use; returns its messages."""
        if cid == CURRENT:
            return self.store.load()
        if not _ID.match(cid) or not (self.archive / f"{cid}.json").is_file():
            raise PaddockError("That conversation is no longer there.")
        chosen = self.archive / f"{cid}.json"
        self.put_aside()
        os.replace(chosen, self.store.path)
        Pictures(self.archive / f"{cid}.pictures").move_to(self.pictures.folder)
        return self.store.load()


def replay(messages: list[dict[str, Any]]) -> list[Replayed]:
    """A saved conversation as the window draws it: what the person said, the answers, a card per
    tool call with its result (the labels around untrusted data taken off)."""
    out: list[Replayed] = []
    calls: dict[str, str] = {}
    for m in messages:
        blocks = m.get("content")
        blocks = [{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks or []
        for b in blocks:
            kind = b.get("type") if isinstance(b, dict) else None
            if kind == "text" and b.get("text"):
                out.append(UserSaid(b["text"]) if m.get("role") == "user" else TextDelta(b["text"]))
            elif kind == "tool_use":
                calls[str(b.get("id"))] = str(b.get("name"))
                out.append(ToolCalled(str(b.get("id")), str(b.get("name")), dict(b.get("input") or {}), ""))
            elif kind == "tool_result":
                cid = str(b.get("tool_use_id"))
                content = b.get("content")
                text = content if isinstance(content, str) else _text({"content": content})
                out.append(ToolFinished(cid, calls.get(cid, ""), bool(b.get("is_error")), "",
                                        _LABELS.sub("", text).strip(), -1.0))  # fmt: skip
    return out
