"""Folder trust: remembered per folder (its path plus its identity) in app data.

Until a folder is trusted, nothing in it is read for behaviour (its
.claude/settings.json, hooks, memory files, MCP configuration). A folder
that was replaced (same path, another device/inode) is not trusted any more.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from paddock.core import beneath
from paddock.core.beneath import UnsafePath
from paddock.core.locks import file_lock
from paddock.core.paths import data_dir

BEHAVIOUR_FILES = (
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".claude/hooks",
    ".claude/commands",
    ".claude/agents",
    ".claude/skills",
    "CLAUDE.md",
    ".claude/CLAUDE.md",
    ".mcp.json",
)


@dataclass(frozen=True)
class TrustRecord:
    path: str
    device: int
    inode: int
    born_ns: int  # creation time where the file system records it, else 0
    trusted_at: float


def _birth_ns(path: Path) -> int:
    """The folder's creation time (statx STATX_BTIME), so a deleted and re-created
    folder that got the same inode number is still a different folder."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(256)
        at_fdcwd, statx_btime = -100, 0x800
        if libc.statx(at_fdcwd, os.fsencode(path), 0, statx_btime, buf) != 0:
            return 0
        mask = int.from_bytes(buf.raw[0:4], "little")
        if not mask & statx_btime:
            return 0
        sec = int.from_bytes(buf.raw[80:88], "little", signed=True)
        nsec = int.from_bytes(buf.raw[88:92], "little")
        return sec * 1_000_000_000 + nsec
    except (OSError, AttributeError):
        return 0


class TrustStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / "trust.json"

    def _load(self) -> dict[str, TrustRecord]:
        try:
            raw = json.loads(self.path.read_text())
            return {k: TrustRecord(**v) for k, v in raw.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError):
            return {}  # an unreadable store trusts nothing (fail closed)

    def _save(self, records: dict[str, TrustRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps({k: vars(v) for k, v in records.items()}, indent=1))
        os.replace(tmp, self.path)

    def is_trusted(self, folder: Path) -> bool:
        real = folder.resolve()
        rec = self._load().get(str(real))
        if rec is None:
            return False
        try:
            st = real.stat()
        except OSError:
            return False
        return (st.st_dev, st.st_ino, _birth_ns(real)) == (rec.device, rec.inode, rec.born_ns)

    def trust(self, folder: Path) -> None:
        real = folder.resolve()
        st = real.stat()
        with self._editing() as records:
            records[str(real)] = TrustRecord(str(real), st.st_dev, st.st_ino, _birth_ns(real), time.time())

    def revoke(self, folder: Path) -> bool:
        with self._editing() as records:
            gone = records.pop(str(folder.resolve()), None)
        return gone is not None

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, TrustRecord]]:
        """The records under a lock, saved when the block ends: the window and a `paddock run --yes`
        may change them at once, and neither may write back a list without the other's change."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            records = self._load()
            yield records
            self._save(records)


def behaviour_files(folder: Path) -> list[str]:
    """What inside the folder would change the agent's behaviour once trusted (for the trust question).

    Only names are listed; nothing is opened or parsed.
    """
    found = []
    for rel in BEHAVIOUR_FILES:
        try:
            if beneath.lstat(folder, rel) is not None:  # a link counts as there; it is never followed
                found.append(rel)
        except (OSError, UnsafePath):
            found.append(rel)  # something is in the way of the name: say so, open nothing
    return found
