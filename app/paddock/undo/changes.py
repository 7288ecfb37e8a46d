"""What a session changed in the folder, and which of those files could run on the host later.

The sandbox keeps the agent's commands off the host, but the folder is the
user's: a git hook, an editor task or a macro written there runs later, on the
host, when the person uses their own tools. The end-of-session summary names
those files so the person can look at them (the app offers Revert).

The folder is walked on the host from directory descriptors (``os.fwalk``) without following links.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from paddock.core import beneath
from paddock.core.beneath import UnsafePath
from paddock.core.errors import PaddockError
from paddock.core.text import shown

MAX_FILES = 100_000
MAX_DEPTH = 256  # folders inside folders the walk goes into (os.fwalk recurses: a deeper tree crashed it)
MACRO_SUFFIXES = (".docm", ".dotm", ".xlsm", ".xltm", ".xlam", ".pptm", ".potm", ".ppam")


@dataclass(frozen=True)
class Entry:
    size: int
    mtime_ns: int
    mode: int
    # The host kernel's own change time and the inode: the guest can reset a file's mtime after
    # editing it in place, but not its ctime, and a replaced file is a new inode.
    ctime_ns: int = 0
    ino: int = 0


UNSCANNED = "\x00unscanned"  # a listing's marker: the walk stopped at MAX_FILES or MAX_DEPTH


@dataclass(frozen=True)
class Change:
    path: str  # as it is in the folder (for Revert); show ``shown_path`` to people
    kind: str  # created | changed | deleted | not scanned
    risk: str | None = None  # why this file could run on the host later

    @property
    def shown_path(self) -> str:
        return shown(self.path)


BACKUP_MAX_FILE = 1024 * 1024  # files that could run on the host are kept (up to this size) so Revert can restore them


def list_folder(folder: Path) -> dict[str, Entry]:
    """Every file and link in the folder, at every depth, never following links. A folder with
    more than ``MAX_FILES`` gets the ``UNSCANNED`` marker: the walk never stops silently."""
    out: dict[str, Entry] = {}
    # fwalk holds each folder open and checks it is the one it listed before descending, so a
    # folder the guest swaps for a link mid-walk is not followed out of the folder.
    for root, dirs, files, root_fd in os.fwalk(folder, follow_symlinks=False):
        if dirs and os.path.relpath(root, folder).count(os.sep) >= MAX_DEPTH:  # deeper: not walked (no crash)
            out[UNSCANNED] = Entry(0, 0, 0)
            dirs.clear()
        for name in files + dirs:
            try:
                st = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            out[os.path.relpath(os.path.join(root, name), folder)] = Entry(
                st.st_size, st.st_mtime_ns, st.st_mode, st.st_ctime_ns, st.st_ino
            )
            if len(out) >= MAX_FILES:
                out[UNSCANNED] = Entry(0, 0, 0)
                return out
    return out


# What a path inside the folder can do on the host later, by its name, at any depth (a
# sub-project's hooks and settings run as surely as the top folder's).
def _under(parts: list[str], folder: str) -> bool:
    return folder in parts[:-1]


_NAME_RISKS: tuple[tuple[Callable[[list[str], str], bool], str], ...] = (
    (
        lambda parts, n: (
            any(parts[i : i + 2] == [".git", "hooks"] for i in range(len(parts) - 2)) and not n.endswith(".sample")
        ),
        "a git hook: git runs it on your computer",
    ),
    (
        lambda parts, n: parts[-2:] == [".git", "config"],
        "git settings can name programs git runs (hooksPath, fsmonitor, filters)",
    ),
    (
        lambda parts, n: _under(parts, ".vscode") and n in ("tasks.json", "launch.json", "settings.json"),
        "editor settings that can run commands when the folder is opened",
    ),
    (
        lambda parts, n: _under(parts, ".claude") or n in (".mcp.json", "CLAUDE.md"),
        "agent settings that change what coding tools do in this folder",
    ),
    (
        lambda parts, n: n in (".envrc", ".env") or _under(parts, ".idea"),
        "tool settings that can run commands when the folder is opened",
    ),
    (lambda parts, n: n.lower().endswith(MACRO_SUFFIXES), "an Office file with macros"),
)


def risk_of(path: str, before: Entry | None, after: Entry) -> str | None:
    parts = path.replace(os.sep, "/").split("/")
    name = parts[-1]
    for matches, reason in _NAME_RISKS:
        if matches(parts, name):
            return reason
    if stat.S_ISLNK(after.mode):
        return "a link that may point outside the folder"
    was_exec = before is not None and before.mode & 0o111
    if after.mode & 0o111 and not was_exec and stat.S_ISREG(after.mode):
        return "a newly executable program or script"
    return None


NOT_SCANNED = (
    f"Paddock stopped listing this folder after {MAX_FILES:,} files: changes past that were not checked "
    "for files that could run on your computer. Look through the folder before you use it with other tools."
)


def diff(before: dict[str, Entry], after: dict[str, Entry]) -> list[Change]:
    changes: list[Change] = []
    if UNSCANNED in before or UNSCANNED in after:
        changes.append(Change(f"(files past the first {MAX_FILES:,})", "not scanned", NOT_SCANNED))
    for path, entry in sorted(after.items()):
        if path == UNSCANNED:
            continue
        old = before.get(path)
        if old is None:
            changes.append(Change(path, "created", risk_of(path, None, entry)))
        elif old != entry:  # size, mtime, mode, and the ctime and inode the guest cannot reset
            changes.append(Change(path, "changed", risk_of(path, old, entry)))
    changes.extend(Change(path, "deleted") for path in sorted(set(before) - set(after) - {UNSCANNED}))
    return changes


class Backed(Protocol):
    """What ``revert`` needs of a session's summary (``paddock.desk.summary.SessionSummary``)."""

    @property
    def folder(self) -> Path: ...  # the session's folder

    @property
    def backup(self) -> Path: ...  # copies of the files that could run on the host, from before the session


# ---------------------------------------------------------------------- revert


def back_up(folder: Path, entries: dict[str, Entry], backup: Path) -> None:
    """Copy the files that could run on the host later (hooks, editor tasks, agent settings,
    macros, executables), so Revert can put them back. Small: these are config files."""
    for rel, entry in entries.items():
        if not stat.S_ISREG(entry.mode) or entry.size > BACKUP_MAX_FILE:
            continue
        if risk_of(rel, None, entry) is None:
            continue
        dest = backup / rel
        try:
            data = beneath.read_file(folder, rel, BACKUP_MAX_FILE)  # never through a link the guest left
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            dest.write_bytes(data)
        except (OSError, UnsafePath):
            continue


def why_not_open(folder: Path, rel: str) -> str | None:
    """Why a file the session left should not be handed to the person's programs (None: it may).
    A link, a special file or a path through a link is not opened: it could lead anywhere."""
    try:
        st = beneath.lstat(folder, rel)
    except (OSError, UnsafePath) as exc:
        return exc.message if isinstance(exc, UnsafePath) else str(exc.strerror)
    if st is None:
        return f"{rel} is no longer there."
    if stat.S_ISLNK(st.st_mode):
        return f"{rel} is a link; Paddock does not open links the assistant left."
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return f"{rel} is not an ordinary file."
    return None


def revert(summary: Backed, change: Change) -> str:
    """Undo one change in the folder, from the host. Returns what was done, in plain words.

    A created file is deleted; a changed or deleted file comes back from the copy kept when the
    session started (kept for files that could run on the host); otherwise its permissions are
    put back. Every step walks the folder without following links (``paddock.core.beneath``):
    a link the guest left anywhere on the way is refused, and nothing outside is touched.
    """
    folder = summary.folder
    try:
        st = beneath.lstat(folder, change.path)
        if change.kind == "created":
            if st is not None:
                beneath.remove(folder, change.path)
            return f"Deleted {change.path}."
        copy = summary.backup / change.path  # Paddock's own folder, not the guest's
        if copy.is_file() and not copy.is_symlink():
            beneath.write_file(folder, change.path, copy.read_bytes())
            return f"Put back the earlier {change.path}."
        if change.kind == "changed" and st is not None and stat.S_ISREG(st.st_mode):
            beneath.chmod(folder, change.path, stat.S_IMODE(st.st_mode) & ~0o111)
            return f"{change.path} can no longer be run as a program."
    except (UnsafePath, OSError) as exc:
        why = exc.message if isinstance(exc, UnsafePath) else exc.strerror
        raise PaddockError(f"{change.path} was not changed: {why}") from exc
    raise PaddockError(f"There is no earlier copy of {change.path} to put back.")
