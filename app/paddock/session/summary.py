"""What a session changed in the folder, and which of those files could run on the host later.

The sandbox keeps the agent's commands off the host, but the folder is the
user's: a git hook, an editor task or a macro written there runs later, on the
host, when the person uses their own tools. The end-of-session summary names
those files so the person can look at them (the app offers Revert).

The folder is walked on the host with ``lstat`` and without following links.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_FILES = 100_000
MACRO_SUFFIXES = (".docm", ".dotm", ".xlsm", ".xltm", ".xlam", ".pptm", ".potm", ".ppam")


@dataclass(frozen=True)
class Entry:
    size: int
    mtime_ns: int
    mode: int


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # created | changed | deleted
    risk: str | None = None  # why this file could run on the host later


def snapshot(folder: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            out[os.path.relpath(full, folder)] = Entry(st.st_size, st.st_mtime_ns, st.st_mode)
            if len(out) >= MAX_FILES:
                return out
    return out


def risk_of(path: str, before: Entry | None, after: Entry) -> str | None:
    p = path.replace(os.sep, "/")
    name = p.rsplit("/", 1)[-1]
    if p.startswith(".git/hooks/") and not name.endswith(".sample"):
        return "a git hook: git runs it on your computer"
    if p in (".git/config",) or p.endswith("/.git/config"):
        return "git settings can name programs git runs (hooksPath, fsmonitor, filters)"
    if p.startswith(".vscode/") and name in ("tasks.json", "launch.json", "settings.json"):
        return "editor settings that can run commands when the folder is opened"
    if p.startswith(".claude/") or p in (".mcp.json", "CLAUDE.md"):
        return "agent settings that change what coding tools do in this folder"
    if name in (".envrc", ".env") or p.startswith(".idea/"):
        return "tool settings that can run commands when the folder is opened"
    if name.lower().endswith(MACRO_SUFFIXES):
        return "an Office file with macros"
    if stat.S_ISLNK(after.mode):
        return "a link that may point outside the folder"
    was_exec = before is not None and before.mode & 0o111
    if after.mode & 0o111 and not was_exec and stat.S_ISREG(after.mode):
        return "a newly executable program or script"
    return None


def diff(before: dict[str, Entry], after: dict[str, Entry]) -> list[Change]:
    changes: list[Change] = []
    for path, entry in sorted(after.items()):
        old = before.get(path)
        if old is None:
            changes.append(Change(path, "created", risk_of(path, None, entry)))
        elif (old.size, old.mtime_ns, old.mode) != (entry.size, entry.mtime_ns, entry.mode):
            changes.append(Change(path, "changed", risk_of(path, old, entry)))
    changes.extend(Change(path, "deleted") for path in sorted(set(before) - set(after)))
    return changes
