"""Restore points: what the folder was at the start of each turn, kept so that any turn can be undone.

A restore point is a *manifest* of the folder (every file, folder and link: type, mode, size,
mtime, and the host's inode and change time) and a copy of every file's content in Paddock's
own store (``<data>/undo/<folder key>/``, never in the folder, never shared with the guest)::

    points/000007.json     the manifest (written last, atomically: a point without it never existed)
    objects/<dev-ino-size-mtime-ctime>    one copy per *version* of a file, shared by every point

A version is named by what the host kernel says about it. The guest can reset a file's mtime
but not its change time or inode, so a file changed in any way (in place, replaced, chmodded)
has a new name and is copied; an unchanged file is found in the store and costs nothing. So the
first point of a folder copies the folder once; every later point — the next turn, the next
session, tomorrow's — copies only what changed since. The design and what it does and does not
guarantee are in docs/UNDO.md.

The folder is read without following links: it is walked from descriptors (``scandir`` on a
directory descriptor, ``O_NOFOLLOW`` opens), so a link the guest left is recorded as a link.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paddock.core import beneath
from paddock.core.beneath import UnsafePath
from paddock.core.locks import file_lock
from paddock.core.paths import data_dir
from paddock.undo.listing import DIR as DIR
from paddock.undo.listing import FILE as FILE
from paddock.undo.listing import LINK as LINK
from paddock.undo.listing import MAX_DEPTH, MAX_ITEMS, key_of
from paddock.undo.listing import Item as Item
from paddock.undo.listing import Key as Key
from paddock.undo.listing import Listing as Listing
from paddock.undo.listing import UndoError as UndoError
from paddock.undo.listing import scan as scan
from paddock.undo.listing import version as version

MB = 1024 * 1024
DEFAULT_SHARE = 10  # without a policy budget: a tenth of the free disk …
DEFAULT_CAP_MB = 20_000  # … and at most this
WARN_AT = 0.8  # say so when the store is past this share of its budget


# ---------------------------------------------------------------------- the store


@dataclass
class Point:
    id: int
    time: float
    kind: str  # start | turn | before-undo
    label: str
    session: str
    items: Listing
    unsaved: list[str] = field(default_factory=list)  # files whose content did not fit the budget
    skipped: list[str] = field(default_factory=list)  # folders whose contents were not recorded (too deep, unreadable)
    partial: list[str] = field(default_factory=list)  # folders listed only in part (past MAX_ITEMS); "" the folder

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "kind": self.kind,
            "label": self.label,
            "session": self.session,
            "items": {k: v.to_json() for k, v in self.items.items()},
            "unsaved": self.unsaved,
            "skipped": self.skipped,
            "partial": self.partial,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Point:
        items = {str(k): Item.from_json(v) for k, v in raw["items"].items()}
        return cls(
            int(raw["id"]),
            float(raw["time"]),
            str(raw["kind"]),
            str(raw["label"]),
            str(raw["session"]),
            items,
            [str(u) for u in raw.get("unsaved", [])],
            [str(u) for u in raw.get("skipped", [])],
            [str(u) for u in raw.get("partial", [])],
        )


@dataclass(frozen=True)
class Made:
    """A restore point just made: what it cost, and anything the person should read."""

    point: Point
    copied_files: int
    copied_bytes: int
    seconds: float
    dropped: list[int]  # older points dropped to stay within the budget
    warnings: list[str]
    lazy_files: int = 0  # recorded, not copied: kept only if something is about to change them


def store_for(folder: Path, root: Path | None = None) -> Path:
    key = hashlib.sha256(str(folder).encode()).hexdigest()[:24]
    return (root or data_dir() / "undo") / key


def budget_bytes(budget_mb: int | None, store: Path) -> int:
    if budget_mb is not None:
        return budget_mb * MB
    probe = store
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    return min(free // DEFAULT_SHARE, DEFAULT_CAP_MB * MB)


class UndoStore:
    """The restore points of one folder."""

    def __init__(self, folder: Path, *, budget_mb: int | None = None, root: Path | None = None) -> None:
        self.folder = folder
        self.path = store_for(folder, root)
        self.budget_mb = budget_mb
        self.objects = self.path / "objects"
        self.points_dir = self.path / "points"
        self.on_point: Callable[[Point], None] | None = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time per folder (a window, a `paddock run` and a `paddock undo`)."""
        for d in (self.path.parent, self.path, self.objects, self.points_dir):
            d.mkdir(mode=0o700, exist_ok=True)
        with file_lock(self.path / "lock"):
            yield

    # ------------------------------------------------------------------ points

    def points(self) -> list[Point]:
        """Every point, oldest first; a manifest that cannot be read is skipped."""
        out: list[Point] = []
        if not self.points_dir.is_dir():
            return out
        for p in sorted(self.points_dir.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                out.append(Point.from_json(json.loads(p.read_text())))
        return out

    def point(self, point_id: int) -> Point:
        for p in self.points():
            if p.id == point_id:
                return p
        raise UndoError(
            f"There is no restore point {point_id} for {self.folder}.", hint="paddock undo --list shows them."
        )

    def has(self, ref: str) -> bool:
        return (self.objects / ref).is_file()

    def object_path(self, ref: str) -> Path:
        return self.objects / ref

    def make(
        self, kind: str, label: str, session: str, *, lazy: bool = False, eager: Callable[[], set[Key]] | None = None
    ) -> Made:
        """Record the folder as it is now, copying every file version the store does not hold yet —
        or, ``lazy`` (the change guard runs: ``paddock.undo.keeper``), only those of the files
        ``eager()`` names (held open for writing by something still running)."""
        t0 = time.perf_counter()
        with self.locked():
            skipped: list[str] = []
            partial: list[str] = []
            items = scan(self.folder, skipped, partial)
            existing = self._ids()  # manifests are read only when old points must go
            new = {rel: it for rel, it in items.items() if it.kind == FILE and not self.has(it.ref)}
            lazy_files = 0
            if lazy:
                busy = eager() if eager is not None else set()
                lazy_files = len(new)
                new = {rel: it for rel, it in new.items() if key_of(it.ref) in busy}
                lazy_files -= len(new)
            budget = budget_bytes(self.budget_mb, self.path)
            # A file larger than the whole budget is never kept, so it must not make older points go
            # (a guest's `truncate -s 30G x` costs it nothing and would otherwise wipe the history).
            needed = sum(it.size for it in new.values() if it.size <= budget)
            used = self.used_bytes()
            dropped: list[int] = []
            while existing and used + needed > budget:
                dropped.append(existing.pop(0))
                (self.points_dir / f"{dropped[-1]:06d}.json").unlink(missing_ok=True)
                used = self.collect(self.points(), also=items)  # the copies this point uses stay
            warnings: list[str] = []
            if dropped:
                warnings.append(
                    f"To stay within the {budget // MB:,} MB kept for undo, the oldest "
                    f"{len(dropped)} restore point(s) of this folder were dropped."
                )
            unsaved: list[str] = []
            copied = copied_bytes = 0
            planned: list[str] = []
            for rel, it in sorted(new.items(), key=lambda kv: kv[1].size):  # small first: the most files kept
                if used + it.size > budget:
                    unsaved.append(rel)
                else:
                    planned.append(rel)
                    used += it.size
            refs = [self.copy_in(rel) for rel in planned]  # the disk is the limit: threads did not help
            for rel, ref in zip(planned, refs, strict=True):
                it = items[rel]
                if ref is None:
                    unsaved.append(rel)
                    continue
                if ref != it.ref:  # it changed between the scan and the copy: record what was copied
                    items[rel] = Item(FILE, it.mode, it.size, it.mtime_ns, ref)
                copied += 1
                copied_bytes += it.size
            if unsaved:
                lost = _mb(sum(items[r].size for r in unsaved))
                warnings.append(
                    f"{len(unsaved)} file(s) ({lost}) could not be kept "
                    f"for undo (the {budget // MB:,} MB budget is full or they could not be read); "
                    "a change to them cannot be undone."
                )
            warnings += _skipped_warning(skipped, partial)
            if not unsaved and used > budget * WARN_AT:
                warnings.append(
                    f"Restore points for this folder use {_mb(used)} of the {budget // MB:,} MB kept "
                    "for undo; older points will be dropped when a turn needs more."
                )
            point = Point(
                self._next_id(), time.time(), kind, label[:200], session, items, unsaved, skipped[:1000], partial
            )
            self._write_point(point)
            if self.on_point is not None:
                self.on_point(point)  # under the lock: the guard watches this point's files from now
        return Made(point, copied, copied_bytes, time.perf_counter() - t0, dropped, warnings, lazy_files)

    def _next_id(self) -> int:
        """Ids are never reused, even after every point was dropped (the last one is remembered)."""
        counter = self.path / "last-id"
        try:
            last = int(counter.read_text())
        except (OSError, ValueError):
            last = 0
        new = max([last, *self._ids()]) + 1
        tmp = counter.with_suffix(".tmp")
        tmp.write_text(str(new))
        os.replace(tmp, counter)
        return new

    def _ids(self) -> list[int]:
        return sorted(int(p.stem) for p in self.points_dir.glob("*.json") if p.stem.isdigit())

    def _write_point(self, point: Point) -> None:
        """The manifest, last and atomically. The copies are not synced one by one (that cost
        seconds per thousand files): a crash of the app or the VM loses nothing the kernel has,
        and the copies reach the disk with the next writeback; only a power loss in the seconds
        after a point could leave a manifest whose copies are short (``restore`` then names them)."""
        tmp = self.points_dir / f".{point.id:06d}.tmp"
        with open(tmp, "w") as f:
            json.dump(point.to_json(), f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.points_dir / f"{point.id:06d}.json")

    def copy_in(self, rel: str) -> str | None:
        """Copy one file's content into the store; its version as the copy found it (None: it
        could not be read, or it kept changing while it was copied)."""
        for _ in range(3):
            try:
                with beneath.parent_fd(self.folder, rel) as (dfd, name):
                    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
            except (OSError, UnsafePath):
                return None
            try:
                before = os.fstat(src)
                if not stat.S_ISREG(before.st_mode):
                    return None
                ref = version(before)
                if self.keep_fd(src, ref):
                    return ref
            except OSError:
                return None
            finally:
                os.close(src)
        return None

    def keep_fd(self, src: int, ref: str) -> bool:
        """Copy the file open on ``src`` into the store as ``ref``, if it is that version and stays
        so while it is copied (False: it is not, or it changed)."""
        before = os.fstat(src)
        if version(before) != ref:
            return False
        if self.has(ref):
            return True
        tmp = self.objects / f".tmp-{os.getpid()}-{threading.get_ident()}-{ref}"
        dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            copy_fd(src, dst, before.st_size)  # no fsync per copy: see _write_point
        finally:
            os.close(dst)
        if version(os.fstat(src)) != ref:  # written while we copied
            tmp.unlink(missing_ok=True)
            return False
        os.replace(tmp, self.objects / ref)
        return True

    def canon(self) -> dict[str, int]:
        """Each kept version → the copy that holds it (versions of the same bytes share one)."""
        out: dict[str, int] = {}
        with contextlib.suppress(FileNotFoundError), os.scandir(self.objects) as it:
            for e in it:
                out[e.name] = e.inode()
        return out

    def alias(self, ref: str, st: os.stat_result) -> None:
        """A file just restored from ``ref`` is that same content under a new version: link it in
        the store so the next point does not copy it again."""
        new = version(st)
        with contextlib.suppress(OSError):
            if not self.has(new):
                os.link(self.objects / ref, self.objects / new)

    # ------------------------------------------------------------------ budget

    def used_bytes(self) -> int:
        seen: set[int] = set()
        total = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(self.objects) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_blocks * 512
        return total

    def collect(self, keep: list[Point], also: Listing | None = None) -> int:
        """Delete the copies no kept point (nor ``also``, a point being made) refers to; the bytes
        the store uses after."""
        wanted = {it.ref for p in keep for it in p.items.values() if it.kind == FILE}
        wanted |= {it.ref for it in (also or {}).values() if it.kind == FILE}
        with contextlib.suppress(FileNotFoundError), os.scandir(self.objects) as it:
            for e in it:
                if e.name not in wanted:
                    with contextlib.suppress(OSError):
                        os.unlink(e.path)
        return self.used_bytes()


def copy_fd(src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes (the kernel copies; no reflinks needed). Holes stay holes: only the
    extents that hold data are copied (``SEEK_DATA``/``SEEK_HOLE``) and the length is set at the
    end, so a sparse file (``truncate -s 1G``) costs the store what it costs the folder."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(src, pos, os.SEEK_DATA)
            end = min(os.lseek(src, start, os.SEEK_HOLE), size)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after pos: the rest is a hole
                break
            start, end = pos, size  # no SEEK_DATA here: copy every byte
        _copy_range(src, dst, start, end)
        pos = end
    os.ftruncate(dst, size)


def _copy_range(src: int, dst: int, start: int, end: int) -> None:
    while start < end:
        try:
            n = os.copy_file_range(src, dst, end - start, start, start)
        except OSError:
            os.lseek(dst, start, os.SEEK_SET)
            n = os.sendfile(dst, src, start, end - start)
        if n == 0:
            break
        start += n


def _skipped_warning(skipped: list[str], partial: list[str]) -> list[str]:
    out = []
    if partial:
        out.append(
            f"This folder has more than {MAX_ITEMS:,} entries; the restore point lists the first "
            f"{MAX_ITEMS:,}. An undo puts back what it lists and leaves the rest as it is."
        )
    if skipped:
        out.append(
            f"{len(skipped)} folder(s) are nested more than {MAX_DEPTH} deep or cannot be read (such as "
            f"{skipped[0][:120]}…); what is inside them is not kept and an undo leaves it as it is. "
            "Everything else is kept."
        )
    return out


def _mb(n: int) -> str:
    return f"{n / MB:,.1f} MB"
