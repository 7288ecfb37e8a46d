"""Host access to paths inside a folder the guest could change, without following what it left.

The guest writes the shared folder, so any name in it may be a symlink to anywhere on the host,
a FIFO that blocks a reader forever, or a device that never ends. Every host read or write of a
path inside the folder goes through here: the path is walked one component at a time from a
descriptor of the folder (``openat`` with ``O_NOFOLLOW``: a symlink anywhere on the way is
refused, ``..`` and absolute paths are refused before any call), the last component must be a
regular file (or a directory where one is asked for), and reads are bounded.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from paddock.core.errors import PaddockError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(PaddockError):
    """A path inside the folder that Paddock will not follow (a link, a special file, outside)."""


def _parts(rel: str | os.PathLike[str]) -> list[str]:
    pure = PurePosixPath(os.fspath(rel))
    if pure.is_absolute() or not pure.parts or any(p in ("..", "") for p in pure.parts):
        raise UnsafePath(f"{os.fspath(rel)!r} is not a plain path inside the folder.")
    return [p for p in pure.parts if p != "."]


@contextlib.contextmanager
def parent_fd(root: Path, rel: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """A descriptor of ``rel``'s parent folder (walked without following links) and its last name."""
    parts = _parts(rel)
    if not parts:
        raise UnsafePath("the folder itself is not a file inside it.")
    fd = os.open(root, DIR_FLAGS)
    try:
        for name in parts[:-1]:
            try:
                nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise UnsafePath(f"{os.fspath(rel)}: {name} is not a folder inside it ({exc.strerror}).") from exc
            os.close(fd)
            fd = nxt
        yield fd, parts[-1]
    finally:
        os.close(fd)


def read_file(root: Path, rel: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a regular file inside ``root``, at most ``limit`` of them (more is an error)."""
    with parent_fd(root, rel) as (dfd, name):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as exc:
            raise UnsafePath(f"{os.fspath(rel)} cannot be opened without following a link ({exc.strerror}).") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{os.fspath(rel)} is not a regular file.")
        if st.st_size > limit:
            raise UnsafePath(f"{os.fspath(rel)} is larger than {limit} bytes.")
        data = os.read(fd, limit + 1)
        if len(data) > limit:
            raise UnsafePath(f"{os.fspath(rel)} is larger than {limit} bytes.")
        return data
    finally:
        os.close(fd)


def lstat(root: Path, rel: str | os.PathLike[str]) -> os.stat_result | None:
    """What is at ``rel`` (a link itself, not its target); None when nothing is."""
    try:
        with parent_fd(root, rel) as (dfd, name):
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove(root: Path, rel: str | os.PathLike[str]) -> None:
    """Remove the file or link at ``rel`` (a folder, with everything in it, never following links)."""
    with parent_fd(root, rel) as (dfd, name):
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _rmtree_at(dfd, name)
        else:
            os.unlink(name, dir_fd=dfd)


def _rmtree_at(dfd: int, name: str) -> None:
    fd = os.open(name, DIR_FLAGS, dir_fd=dfd)
    try:
        for entry in os.listdir(fd):
            st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                _rmtree_at(fd, entry)
            else:
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dfd)


def write_file(root: Path, rel: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Put ``data`` at ``rel`` (replacing what is there, link or file, never writing through a link)."""
    with parent_fd(root, rel) as (dfd, name):
        tmp = f".paddock-restore-{os.getpid()}-{name}"[:255]
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dfd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)


def chmod(root: Path, rel: str | os.PathLike[str], mode: int) -> None:
    """Change the mode of the regular file at ``rel`` (never of a link's target)."""
    with parent_fd(root, rel) as (dfd, name):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(f"{os.fspath(rel)} is not a regular file.")
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
