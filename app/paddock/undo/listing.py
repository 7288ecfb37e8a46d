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
MAX_DEPTH = 256  # folders inside folders; what is deeper is not recorded (skipped and named), never a stop
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


def scan(folder: Path, skipped: list[str] | None = None, partial: list[str] | None = None) -> Listing:
    """Every file, folder and link under ``folder`` (regular files, folders and links only: a
    FIFO or socket cannot be restored and is skipped), walked from descriptors, never following
    a link. A folder nested more than ``MAX_DEPTH`` deep, or one that cannot be read, is recorded
    but its contents are not: its path goes to ``skipped`` (what the guest leaves behind never
    stops a point or an undo; it costs only that subtree). Past ``MAX_ITEMS`` entries the listing
    stops: the folders it was in go to ``partial`` ("" is the folder itself), whose unlisted
    entries an undo leaves in place."""
    out: Listing = {}
    fd = os.open(folder, DIR_FLAGS)
    try:
        _scan_at(fd, "", out, skipped if skipped is not None else [], partial if partial is not None else [])
    finally:
        os.close(fd)
    return out


def _scan_at(dfd: int, prefix: str, out: Listing, skipped: list[str], partial: list[str], *, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        skipped.append(prefix.rstrip("/"))
        return
    try:
        entries = os.scandir(dfd)
    except OSError:  # not readable now (mode 0): recorded, its contents not
        skipped.append(prefix.rstrip("/"))
        return
    with entries:
        # A folder's own files before its subfolders: past MAX_ITEMS, what a guest piled up in a
        # subfolder cannot push the person's documents beside it out of the listing.
        for e in sorted(entries, key=_folder_last):
            if len(out) >= MAX_ITEMS:  # the rest of this folder (and of those it is in) is not listed
                partial.append(prefix.rstrip("/"))
                return
            try:
                st = e.stat(follow_symlinks=False)
                rel = prefix + e.name
                mode = stat.S_IMODE(st.st_mode)
                if stat.S_ISDIR(st.st_mode):
                    out[rel] = Item(DIR, mode, 0, st.st_mtime_ns, "")
                    try:
                        sub = os.open(e.name, DIR_FLAGS, dir_fd=dfd)
                    except OSError as exc:
                        if isinstance(exc, FileNotFoundError):
                            raise
                        skipped.append(rel)
                        continue
                    try:
                        _scan_at(sub, rel + "/", out, skipped, partial, depth=depth + 1)
                    finally:
                        os.close(sub)
                elif stat.S_ISLNK(st.st_mode):
                    out[rel] = Item(LINK, mode, 0, st.st_mtime_ns, os.readlink(e.name, dir_fd=dfd))
                elif stat.S_ISREG(st.st_mode):
                    out[rel] = Item(FILE, mode, st.st_size, st.st_mtime_ns, version(st))
            except FileNotFoundError:  # gone while we looked (something else still writes)
                continue


def _folder_last(e: os.DirEntry[str]) -> bool:
    try:
        return e.is_dir(follow_symlinks=False)
    except OSError:
        return False


def key_of(ref: str) -> Key:
    """The (device, inode) a version was read from."""
    dev, ino = ref.split("-")[:2]
    return int(dev), int(ino)
