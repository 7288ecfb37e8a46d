"""Lazy restore points: a point records the folder (a ``stat`` per file) and keeps a file's
content only when something is about to change it.

While a session runs, the guest's folder-sharing daemon is under the change guard
(``paddock.vm.guard``): before any call that could alter an existing file, the guard hands the
file to ``LazyKeeper.before_change``. If the file's version is one the newest point recorded and
the store does not hold yet, it is kept first:

* about to be written, truncated, chmodded, … — its content is copied into the store;
* about to be unlinked or renamed (its name goes; its inode and bytes stay) — it is hard-linked
  into the store (no copy), if the store is on the same filesystem and the file has no other
  name; a later write to that inode (a rename that failed, another name made meanwhile) first
  replaces the store's link with a copy.

A file is kept at most once per version; files nothing touches are never copied. Where the
guard is not running, a point copies what it records, as before (``UndoStore.make`` with
``lazy=False``). A file that does not fit the budget when it is about to change is let go (the
call goes on; refusing it would break the guest's program) and named at the next point and by
any undo that needs it.
"""

from __future__ import annotations

import logging
import os
import threading

from paddock.core import beneath
from paddock.core.beneath import UnsafePath
from paddock.undo.listing import FILE, Key, key_of, version
from paddock.undo.store import Point, UndoStore, budget_bytes, copy_fd
from paddock.vm.guard import REMOVE

log = logging.getLogger(__name__)


class LazyKeeper:
    """What the change guard asks before the guest's daemon changes a file (thread-safe: the guard
    answers several calls at once)."""

    def __init__(self, store: UndoStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._busy: dict[Key, threading.Lock] = {}
        self._watch: dict[Key, str] = {}  # inode → the version a point needs and the store lacks
        self._where: dict[str, str] = {}  # that version → where the point saw it in the folder
        self._linked: dict[Key, str] = {}  # inode → the store object that is the same inode
        self.lost: list[str] = []  # versions let go (over the budget, or changed by something unguarded)
        self.kept_files = 0
        self.kept_bytes = 0
        self.linked_files = 0
        self._used = 0
        self._budget = 0

    def arm(self, point: Point) -> None:
        """Watch the files ``point`` recorded and the store does not hold (called under the store's lock)."""
        files = [it for it in point.items.values() if it.kind == FILE]
        watch = {key_of(it.ref): it.ref for it in files if not self.store.has(it.ref)}
        wanted = set(watch.values())
        where = {it.ref: rel for rel, it in point.items.items() if it.kind == FILE and it.ref in wanted}
        inodes = {ino: name for name, ino in self.store.canon().items()}
        dev = self.store.objects.stat().st_dev
        linked = {
            key_of(it.ref): inodes[key_of(it.ref)[1]]
            for it in files
            if key_of(it.ref)[0] == dev and key_of(it.ref)[1] in inodes
        }
        used = self.store.used_bytes()
        budget = budget_bytes(self.store.budget_mb, self.store.path)
        with self._lock:
            self._watch, self._where, self._linked, self._used, self._budget = watch, where, linked, used, budget

    def take_lost(self) -> list[str]:
        with self._lock:
            lost, self.lost = self.lost, []
        return lost

    def before_change(self, kind: str, fd: int, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        with self._lock:
            if key not in self._watch and key not in self._linked:
                return
            busy = self._busy.setdefault(key, threading.Lock())
        with busy:  # two calls on one file: the second waits for the first's copy
            try:
                self._keep(kind, key, fd, st)
            except OSError as exc:
                log.warning("could not keep a file before it changed: %s", exc)

    def _keep(self, kind: str, key: Key, fd: int, st: os.stat_result) -> None:
        """Under the file's own lock. The file stays watched until it is kept, so a second call on
        it waits for the first one's copy instead of going on while the copy runs."""
        with self._lock:
            ref = self._watch.get(key)
            linked = self._linked.get(key)
        if ref is not None:
            try:
                if self.store.has(ref):
                    return
                if version(st) != ref:  # changed by something the guard does not see (the host)
                    self._lose(ref)
                elif kind == REMOVE and st.st_nlink == 1 and st.st_dev == self.store.objects.stat().st_dev:
                    self._link(key, fd, ref, st)
                else:
                    self._copy(fd, ref, st)
            finally:
                with self._lock:
                    self._watch.pop(key, None)
        elif linked is not None and kind != REMOVE:
            self._unshare(key, linked)

    def _fits(self, size: int) -> bool:
        with self._lock:
            if self._used + size > self._budget:
                return False
            self._used += size
            return True

    def _lose(self, ref: str) -> None:
        with self._lock:
            self.lost.append(ref)

    def _copy(self, fd: int, ref: str, st: os.stat_result) -> None:
        if not self._fits(st.st_blocks * 512):
            self._lose(ref)
            return
        src = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            kept = self.store.keep_fd(src, ref)
        finally:
            os.close(src)
        if not kept:
            self._lose(ref)
            return
        with self._lock:
            self.kept_files += 1
            self.kept_bytes += st.st_size

    def _link(self, key: Key, fd: int, ref: str, st: os.stat_result) -> None:
        """Link the file into the store through its name in the folder (a link through the daemon's
        own mount would cross mounts); where that name no longer is this inode, copy instead."""
        if not self._fits(st.st_blocks * 512):
            self._lose(ref)
            return
        tmp = self.store.objects / f".link-{os.getpid()}-{threading.get_ident()}-{ref}"
        try:
            with beneath.parent_fd(self.store.folder, self._where.get(ref, "")) as (dfd, name):
                here = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if (here.st_dev, here.st_ino) != key:
                    raise FileNotFoundError(name)
                os.link(name, tmp, src_dir_fd=dfd, follow_symlinks=False)
        except (OSError, UnsafePath):
            with self._lock:
                self._used -= st.st_blocks * 512
            self._copy(fd, ref, st)
            return
        os.replace(tmp, self.store.object_path(ref))
        with self._lock:
            self._linked[key] = ref
            self.linked_files += 1

    def _unshare(self, key: Key, ref: str) -> None:
        """The store's object is still the folder's inode and it is about to change: copy it apart."""
        obj = self.store.object_path(ref)
        src = os.open(obj, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            size = os.fstat(src).st_size
            tmp = self.store.objects / f".unshare-{os.getpid()}-{ref}"
            dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                copy_fd(src, dst, size)
            finally:
                os.close(dst)
            os.replace(tmp, obj)
        finally:
            os.close(src)
        with self._lock:
            self._linked.pop(key, None)
