"""What a restore point records of a folder: every file, folder and link, read without
following a link (``scandir`` on directory descriptors, ``O_NOFOLLOW`` opens), so a link the
guest left is recorded as a link. See ``paddock.undo.store``."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddock.core.beneath import DIR_FLAGS
from paddock.core.errors import PaddockError

MAX_ITEMS = 1_000_000
MAX_DEPTH = 256  # folders inside folders; deeper is refused in plain words, not a crash
FILE, DIR, LINK = "f", "d", "l"
Key = tuple[int, int]  # (device, inode)


class UndoError(PaddockError):
    """A restore point could not be made or used."""


@dataclass(frozen=True)
class Item:
    kind: str  # f | d | l
    mode: int  # permission bits
    size: int
    mtime_ns: int
    ref: str  # a file: its version (the object's name); a link: its target; a folder: ""

    def to_json(self) -> list[Any]:
        return [self.kind, self.mode, self.size, self.mtime_ns, self.ref]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Item:
        kind, mode, size, mtime_ns, ref = raw
        return cls(str(kind), int(mode), int(size), int(mtime_ns), str(ref))


Listing = dict[str, Item]


def version(st: os.stat_result) -> str:
    return f"{st.st_dev}-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}-{st.st_ctime_ns}"


def scan(folder: Path) -> Listing:
    """Every file, folder and link under ``folder`` (regular files, folders and links only: a
    FIFO or socket cannot be restored and is skipped), walked from descriptors, never following
    a link."""
    out: Listing = {}
    fd = os.open(folder, DIR_FLAGS)
    try:
        _scan_at(fd, "", out)
    finally:
        os.close(fd)
    return out


def _scan_at(dfd: int, prefix: str, out: Listing, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise UndoError(f"{prefix[:200]}… is nested more than {MAX_DEPTH} folders deep; Paddock keeps no restore "
                        "points for such a folder.")  # fmt: skip
    with os.scandir(dfd) as entries:
        for e in entries:
            if len(out) >= MAX_ITEMS:
                raise UndoError(
                    f"This folder has more than {MAX_ITEMS:,} files; Paddock cannot keep restore points for it."
                )
            try:
                st = e.stat(follow_symlinks=False)
                rel = prefix + e.name
                mode = stat.S_IMODE(st.st_mode)
                if stat.S_ISDIR(st.st_mode):
                    out[rel] = Item(DIR, mode, 0, st.st_mtime_ns, "")
                    sub = os.open(e.name, DIR_FLAGS, dir_fd=dfd)
                    try:
                        _scan_at(sub, rel + "/", out, depth + 1)
                    finally:
                        os.close(sub)
                elif stat.S_ISLNK(st.st_mode):
                    out[rel] = Item(LINK, mode, 0, st.st_mtime_ns, os.readlink(e.name, dir_fd=dfd))
                elif stat.S_ISREG(st.st_mode):
                    out[rel] = Item(FILE, mode, st.st_size, st.st_mtime_ns, version(st))
            except FileNotFoundError:  # gone while we looked (something else still writes)
                continue


def key_of(ref: str) -> Key:
    """The (device, inode) a version was read from."""
    dev, ino = ref.split("-")[:2]
    return int(dev), int(ino)
