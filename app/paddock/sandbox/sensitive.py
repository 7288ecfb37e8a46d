"""Sensitive reads, seen from the host: the change guard (``paddock.vm.guard``) tells this watcher
of every file the guest's folder-sharing daemon opens to read, and of every file a guarded call
renames, links or changes; a compromised guest cannot hide a read from it.

A read is sensitive when the file's path in the folder matches the built-in list or the policy's
``sensitive.paths`` (``paddock.policy.sensitive``), when its first bytes are a private-key header,
or when the same file (device and inode) was seen under a sensitive name before: so a rename, a
hard link or a symlink made in the guest, or a descriptor passed from another process, still
counts (the daemon opens the file itself, whatever name the guest used); so does a file whose
path is sensitive under the earlier name of a folder above it that the guest renamed.

The first sensitive read of each file is recorded (``SensitiveRead``) and, before the guest's
open goes on, written to the egress gateway (``EgressGateway.taint``), so a request sent right
after the read is already held. Listeners (the session's auditor) are called on the guard's
worker thread and must hand the event on (``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from paddock.core.signal import Signal
from paddock.egress import EgressGateway
from paddock.policy.sensitive import HEAD_BYTES, SensitiveMatcher, looks_like_private_key

log = logging.getLogger(__name__)
Key = tuple[int, int]
UNSEEN_KEY: Key = (-1, -1)  # every read open the guard could not look at: one record
UNSEEN_PATH = "a file Paddock could not check"  # shown as the read's name ("The assistant opened …")


@dataclass(frozen=True)
class SensitiveRead:
    id: str
    path: str  # inside the folder, as the daemon opened it
    why: str  # "name" (a listed path), "known file" (seen under a listed name before), "private key",
    # "renamed folder" (under a folder's earlier name it is listed), "unreadable read" (the guard
    # could not look at the file: fail closed)
    first_name: str  # the listed name the file was first seen under (== path unless renamed or linked)
    time_unix: float


class SensitiveReads:
    """The ``ReadWatcher`` of one session's folder (thread-safe: the guard answers several calls at once)."""

    def __init__(self, folder: Path, matcher: SensitiveMatcher) -> None:
        self.folder = folder
        self.matcher = matcher
        self.reads: list[SensitiveRead] = []
        self.read_seen: Signal[SensitiveRead] = Signal("sensitive read")  # on the guard's worker thread
        self.opens = 0  # read opens looked at
        self._known: dict[Key, str] = {}  # inode -> the sensitive name it was first seen under
        self._folders: dict[Key, str] = {}  # a folder a guarded call named (renamed) -> its first name
        self._read: set[Key] = set()
        self._heads: dict[tuple[int, int, int, int], bool] = {}  # inode version -> has a private-key header
        self._gateway: EgressGateway | None = None
        self._lock = threading.Lock()

    def attach(self, gateway: EgressGateway) -> None:
        """The session's gateway: told of every sensitive read from now on (and of those before)."""
        with self._lock:
            self._gateway = gateway
            if self.reads:
                gateway.taint(self._state())

    # ------------------------------------------------------------------ the guard's calls

    def opened(self, fd: int, st: os.stat_result) -> None:
        self.opens += 1
        key = (st.st_dev, st.st_ino)
        if key in self._read:
            return
        rel = self._rel(fd, st)
        with self._lock:
            first = self._known.get(key)
        why = ""
        if first is not None:
            why = "known file" if rel != first else "name"
        elif rel is not None and self.matcher.matches(rel):
            why, first = "name", rel
        elif rel is not None and self._folders and (was := self._renamed(rel)) is not None:
            why, first = "renamed folder", was
        elif rel is not None and self._private_key(fd, st):
            why, first = "private key", rel
        if why:
            self._record(key, rel or first or "(a file in the folder)", why, first or rel or "")

    def unseen(self, why: str) -> None:
        """A read open went on whose file the guard could not look at: recorded once as an
        "unreadable read", which taints the session like any sensitive read (fail closed)."""
        log.warning("a read open could not be checked (%s): the session counts as tainted", why)
        self._record(UNSEEN_KEY, UNSEEN_PATH, "unreadable read", "")

    def named(self, fd: int, st: os.stat_result) -> None:
        """A guarded call (rename, link, write, …) names this file: remember it if its name is
        sensitive. A folder is remembered under its first name whatever it is (``_renamed``)."""
        rel = self._rel(fd, st)
        if rel is not None and stat.S_ISDIR(st.st_mode):
            with self._lock:
                self._folders.setdefault((st.st_dev, st.st_ino), rel)
        elif rel is not None and self.matcher.matches(rel):
            with self._lock:
                self._known.setdefault((st.st_dev, st.st_ino), rel)

    # ------------------------------------------------------------------ inside

    def _rel(self, fd: int, st: os.stat_result) -> str | None:
        """The file's path in the folder, checked against the folder itself (same inode), or None."""
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")  # the daemon's root is the shared folder
        except OSError:
            return None
        rel = link.lstrip("/")
        if not link.startswith("/") or not rel or link.endswith(" (deleted)"):
            return None
        try:
            here = os.stat(rel, dir_fd=self._folder_fd(), follow_symlinks=False)
        except (OSError, ValueError):
            return None
        return rel if (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino) else None

    def _renamed(self, rel: str) -> str | None:
        """``rel`` under the first name of a folder above it that was renamed, if that is a
        sensitive path (``mv HR Archive`` then reading ``Archive/salaries.xlsx``), else None."""
        parts = rel.split("/")
        for depth in range(len(parts) - 1, 0, -1):
            try:
                here = os.stat("/".join(parts[:depth]), dir_fd=self._folder_fd(), follow_symlinks=False)
            except (OSError, ValueError):
                continue
            with self._lock:
                was = self._folders.get((here.st_dev, here.st_ino))
            if was is not None and self.matcher.matches(was_rel := "/".join([was, *parts[depth:]])):
                return was_rel
        return None

    def _folder_fd(self) -> int:
        fd = getattr(self, "_ffd", None)
        if fd is None:
            fd = os.open(self.folder, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self._ffd: int | None = fd
        return fd

    def _private_key(self, fd: int, st: os.stat_result) -> bool:
        version = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if st.st_size < 32:
            return False
        cached = self._heads.get(version)
        if cached is not None:
            return cached
        head = b""
        with contextlib.suppress(OSError):
            rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                head = os.pread(rfd, HEAD_BYTES, 0)
            finally:
                os.close(rfd)
        found = looks_like_private_key(head)
        self._heads[version] = found
        return found

    def _record(self, key: Key, path: str, why: str, first: str) -> None:
        read = SensitiveRead(secrets.token_hex(6), path, why, first, time.time())
        with self._lock:
            if key in self._read:
                return
            self._read.add(key)
            self._known.setdefault(key, first)
            self.reads.append(read)
            gateway = self._gateway
            state = self._state()
        if gateway is not None:
            gateway.taint(state)  # before the open goes on: a request right after it is already held
        self.read_seen.emit(read)

    def _state(self) -> list[dict[str, str]]:
        return [{"id": r.id, "path": r.path} for r in self.reads]

    def close(self) -> None:
        fd, self._ffd = getattr(self, "_ffd", None), None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
