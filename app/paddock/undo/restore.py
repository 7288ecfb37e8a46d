"""Putting a folder (or one file in it) back as a restore point recorded it.

Every step works from descriptors of the folder, never following a link (``paddock.core.beneath``):
what is in the way — a file where a folder was, a link the guest left, a folder where a file
was — is removed first (a link is removed, never followed), folders are made, then files are
written to a temporary name beside their place and renamed over it (a rename replaces a link,
it never writes through one), with their mode and mtime. Nothing outside the folder is touched.
Files that already match the point are left alone, so the cost is what differs.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from paddock.core import beneath
from paddock.core.beneath import DIR_FLAGS, UnsafePath
from paddock.undo.store import DIR, FILE, LINK, Item, Listing, Point, UndoStore, budget_bytes, copy_fd, scan


@dataclass
class Restored:
    point: Point
    removed: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    skipped: list[str] = field(default_factory=list)  # folders left as they are: their contents were never recorded
    unkept: list[str] = field(default_factory=list)  # replaced or removed without a copy kept (the budget was full)
    unlisted: int = 0  # entries left in place: the point listed their folder only in part (past MAX_ITEMS)

    @property
    def touched(self) -> int:
        return len(self.removed) + len(self.written)


def _depth(rel: str) -> int:
    return rel.count("/")


def _same(a: Item | None, b: Item, canon: dict[str, int] | None = None) -> bool:
    """Whether two entries are the same; two file versions are when the store holds them as one
    copy (a file put back by an undo is a new version of the same bytes)."""
    if a is None or a.kind != b.kind:
        return False
    if b.kind == FILE:
        same_bytes = a.ref == b.ref or (canon is not None and canon.get(a.ref, -1) == canon.get(b.ref, -2))
        return same_bytes and a.mode == b.mode and a.mtime_ns == b.mtime_ns
    if b.kind == LINK:
        return a.ref == b.ref
    return True  # a folder: its mode and mtime are set at the end anyway


def _under_any(rel: str, roots: set[str]) -> bool:
    return any(str(p) in roots for p in PurePosixPath(rel).parents if str(p) != ".")


def restore(store: UndoStore, point: Point, only: str | None = None) -> Restored:
    """Make the folder (or the one path ``only``) what ``point`` recorded."""
    result = Restored(point)
    skipped: list[str] = []
    now = scan(store.folder, skipped)
    canon = store.canon()
    fenced = set(skipped) | set(point.skipped)  # what is inside these is not touched: nobody recorded it
    want = {k: v for k, v in point.items.items() if not _under_any(k, fenced)}
    now = {k: v for k, v in now.items() if not _under_any(k, fenced)}
    full = now
    if only is not None:
        parents = {str(p) for p in PurePosixPath(only).parents if str(p) != "."}

        def mine(k: str) -> bool:
            return k == only or k.startswith(only + "/")

        want = {k: v for k, v in want.items() if mine(k) or k in parents}
        now = {k: v for k, v in now.items() if mine(k) or (k in parents and k in want)}
    result.unkept = _keep_first(store, full, now, want, canon)
    now = _clear(store, now, want, result, set(point.partial))
    result.skipped = _left_alone(fenced, set(result.removed), only)
    dirs = sorted(((r, i) for r, i in want.items() if i.kind == DIR), key=lambda kv: _depth(kv[0]))
    _make_dirs(store, dirs, now, result)
    for rel, it in sorted(want.items()):  # 3. files and links
        if it.kind == DIR or _same(now.get(rel), it, canon):
            continue
        if _step(result, rel, _put_link if it.kind == LINK else _put_file, store, rel, it, point):
            result.written.append(rel)
    for rel, it in reversed(dirs):  # 4. folders' mode and mtime, deepest first (writing inside changes mtime)
        _step(result, rel, _dir_meta, store, rel, it)
    return result


def _left_alone(fenced: set[str], gone: set[str], only: str | None) -> list[str]:
    """The unrecorded folders this restore left as they are (not those it removed whole)."""
    out = [f for f in fenced if f not in gone and not _under_any(f, gone)]
    if only is not None:
        out = [f for f in out if f == only or _under_any(f, {only}) or _under_any(only, {f})]
    return sorted(out)


def _keep_first(store: UndoStore, full: Listing, now: Listing, want: Listing, canon: dict[str, int]) -> list[str]:
    """Before anything is written: a lazy point (``paddock.undo.keeper``) may need a version
    the store does not hold but the folder still has under another name (a file renamed, a folder
    moved): keep it now. And keep every file the restore is about to replace or remove, so the
    "before undo" point can put it back (an undo is itself undoable). Within the undo budget, like
    every other copy into the store (holes stay holes: a sparse file costs what it occupies);
    returns what did not fit."""
    room = budget_bytes(store.budget_mb, store.path) - store.used_bytes()
    unkept: list[str] = []

    def keep(rel: str) -> None:
        nonlocal room
        try:
            st = beneath.lstat(store.folder, rel)
        except (OSError, UnsafePath):
            return
        cost = st.st_blocks * 512 if st is not None else 0
        if cost > room:
            unkept.append(rel)
        elif store.copy_in(rel) is not None:
            room -= cost

    by_ref = {it.ref: rel for rel, it in full.items() if it.kind == FILE}
    for rel, it in want.items():
        here = full.get(rel)
        moved = here is None or here.ref != it.ref  # unchanged in its place: nothing to write
        if it.kind == FILE and moved and not store.has(it.ref) and it.ref in by_ref:
            keep(by_ref[it.ref])
    for rel, it in now.items():
        w = want.get(rel)
        if it.kind == FILE and not store.has(it.ref) and (w is None or not _same(it, w, canon)):
            keep(rel)
    return unkept


def _step(result: Restored, rel: str, fn: Callable[..., object], *args: object) -> bool:
    try:
        fn(*args)
    except (OSError, UnsafePath) as exc:
        result.failed.append((rel, exc.message if isinstance(exc, UnsafePath) else str(exc.strerror or exc)))
        return False
    except RecursionError:  # a subtree nested deeper than Python recurses: it fails alone, the rest goes on
        result.failed.append((rel, "it is nested too deep to remove or write"))
        return False
    return True


def _clear(store: UndoStore, now: Listing, want: Listing, result: Restored, partial: set[str]) -> Listing:
    """1. Out of the way: what the point does not have, or has as something else (a link is
    removed, never followed). Returns what is left. In a folder the point listed only in part
    (``partial``), what it does not have may simply not have been listed: it is left in place."""
    gone: set[str] = set()
    for rel in sorted(now, key=_depth):
        if _under_any(rel, gone):
            continue
        had = want.get(rel)
        if had is None and partial and ("" in partial or _under_any(rel, partial)):
            result.unlisted += 1
            continue
        wrong = had is None or had.kind != now[rel].kind or (had.kind == LINK and not _same(now[rel], had))
        if wrong and _step(result, rel, beneath.remove, store.folder, rel):
            result.removed.append(rel)
            gone.add(rel)
    return {k: v for k, v in now.items() if k not in gone and not _under_any(k, gone)}


def _make_dirs(store: UndoStore, dirs: list[tuple[str, Item]], now: Listing, result: Restored) -> None:
    """2. Folders, shallowest first; an existing one is made writable by its owner while files go
    back in (its own mode is set at the end)."""
    for rel, it in dirs:

        def make(rel: str = rel, it: Item = it) -> None:
            with beneath.parent_fd(store.folder, rel) as (dfd, name):
                if rel not in now and _mkdir(name, dfd):
                    result.written.append(rel)
                else:  # through a descriptor: a folder the guest swapped for a link fails to open (O_NOFOLLOW)
                    fd = os.open(name, DIR_FLAGS, dir_fd=dfd)
                    try:
                        os.fchmod(fd, it.mode | 0o700)
                    finally:
                        os.close(fd)

        _step(result, rel, make)


def _mkdir(name: str, dfd: int) -> bool:
    """Make a folder; False when one is already there (a listing cut short did not show it)."""
    try:
        os.mkdir(name, 0o700, dir_fd=dfd)
    except FileExistsError:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            raise
        return False
    return True


def _dir_meta(store: UndoStore, rel: str, it: Item) -> None:
    with beneath.parent_fd(store.folder, rel) as (dfd, name):
        fd = os.open(name, DIR_FLAGS, dir_fd=dfd)
    try:
        os.fchmod(fd, it.mode)
        os.utime(fd, ns=(it.mtime_ns, it.mtime_ns))
    finally:
        os.close(fd)


def _put_file(store: UndoStore, rel: str, it: Item, point: Point) -> None:
    if rel in point.unsaved or not store.has(it.ref):
        raise UnsafePath("its content was not kept (the undo budget was full, or it was changed outside Paddock first)")
    src = os.open(store.object_path(it.ref), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(src).st_size != it.size:
            raise UnsafePath("the copy kept of it is damaged (cut short)")
        with beneath.parent_fd(store.folder, rel) as (dfd, name):
            tmp = f".paddock-restore-{os.getpid()}-{name}"[:255]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dfd)
            dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                copy_fd(src, dst, it.size)
                os.fchmod(dst, it.mode)
                os.utime(dst, ns=(it.mtime_ns, it.mtime_ns))
                os.fsync(dst)
                ino = os.fstat(dst).st_ino
            finally:
                os.close(dst)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)  # the rename itself moves the ctime
        if st.st_ino == ino:
            store.alias(it.ref, st)
    finally:
        os.close(src)


def _put_link(store: UndoStore, rel: str, it: Item, point: Point) -> None:
    with beneath.parent_fd(store.folder, rel) as (dfd, name):
        tmp = f".paddock-restore-{os.getpid()}-{name}"[:255]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
        os.symlink(it.ref, tmp, dir_fd=dfd)  # the link itself, as it was; never followed
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        os.utime(name, ns=(it.mtime_ns, it.mtime_ns), dir_fd=dfd, follow_symlinks=False)


def differs(a: Listing, b: Listing, canon: dict[str, int] | None = None) -> list[str]:
    """The paths whose entry differs between two listings (a folder's mtime alone does not count)."""
    out = [rel for rel in b if rel not in a or not _same(a[rel], b[rel], canon)]
    out += [rel for rel in a if rel not in b]
    return sorted(out)
