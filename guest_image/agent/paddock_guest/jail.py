"""The workspace jail: whose files they are, and paths that cannot leave the workspace."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections.abc import Iterator

from paddock.guest.v1 import agent_pb2 as pb
from paddock_guest import config


def workspace_owner() -> tuple[int, int]:
    """Commands run as whoever owns the shared folder as the guest sees it (the host maps the
    person to uid 1000 here), so what they create belongs to the person on the host."""
    st = os.stat(config.WORKSPACE)
    return st.st_uid, st.st_gid


_LIBC = ctypes.CDLL(None, use_errno=True)
_SYS_SETFSUID = 122  # x86_64
_SYS_SETFSGID = 123


@contextlib.contextmanager
def as_owner() -> Iterator[None]:
    """Create files in the workspace as its owner, on this thread only (setfsuid is per thread).
    The host's folder-sharing helper maps only the owner's uid: a file created as guest root
    would be refused there, so the agent's own writes take the owner's identity."""
    uid, gid = workspace_owner()
    old_gid = _LIBC.syscall(_SYS_SETFSGID, gid)
    old_uid = _LIBC.syscall(_SYS_SETFSUID, uid)
    try:
        yield
    finally:
        _LIBC.syscall(_SYS_SETFSUID, old_uid)
        _LIBC.syscall(_SYS_SETFSGID, old_gid)


class PathError(Exception):
    """A path the caller gave that is not inside the workspace."""


def resolve(rel: str, *, must_exist: bool = False, allow_root: bool = True) -> str:
    """Map a workspace-relative path to an absolute guest path inside WORKSPACE.

    The parent chain is resolved with realpath, so a symlink anywhere on the
    way that leads outside the workspace is refused. The final component is
    not followed: callers open it with O_NOFOLLOW or lstat.
    """
    if "\x00" in rel:
        raise PathError("path contains a NUL byte")
    if os.path.isabs(rel):
        raise PathError(f"absolute paths are not allowed: {rel!r} (use a path relative to the workspace)")
    norm = os.path.normpath(rel) if rel else "."
    if norm == ".." or norm.startswith("../"):
        raise PathError(f"path leaves the workspace: {rel!r}")
    root = os.path.realpath(config.WORKSPACE)
    if norm == ".":
        if not allow_root:
            raise PathError("this operation needs a path inside the workspace, not the workspace itself")
        return root
    parent, name = os.path.split(norm)
    real_parent = os.path.realpath(os.path.join(root, parent))
    if real_parent != root and not real_parent.startswith(root + "/"):
        raise PathError(f"path leaves the workspace through a symbolic link: {rel!r}")
    full = os.path.join(real_parent, name)
    if must_exist and not os.path.lexists(full):
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", rel)
    return full


def resolve_follow(rel: str) -> str:
    """Like resolve, but follows a final symlink as long as it stays inside."""
    full = resolve(rel)
    real = os.path.realpath(full)
    root = os.path.realpath(config.WORKSPACE)
    if real != root and not real.startswith(root + "/"):
        raise PathError(f"path leaves the workspace through a symbolic link: {rel!r}")
    return real


def workspace_relative(full: str) -> str:
    root = os.path.realpath(config.WORKSPACE)
    return os.path.relpath(full, root)


def makedirs_as_owner(path: str) -> None:
    """Create the missing folders down to path (call it inside as_owner()), checking that each
    new one still lies inside the workspace."""
    root = os.path.realpath(config.WORKSPACE)
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        os.mkdir(d, 0o755)
        real = os.path.realpath(d)
        if not (real == root or real.startswith(root + "/")):
            raise PathError("path leaves the workspace")


def file_info(full: str, rel: str) -> pb.FileInfo:
    st = os.lstat(full)
    if stat.S_ISREG(st.st_mode):
        ftype = pb.FILE_TYPE_FILE
    elif stat.S_ISDIR(st.st_mode):
        ftype = pb.FILE_TYPE_DIRECTORY
    elif stat.S_ISLNK(st.st_mode):
        ftype = pb.FILE_TYPE_SYMLINK
    else:
        ftype = pb.FILE_TYPE_OTHER
    return pb.FileInfo(path=rel, type=ftype, size=st.st_size, mode=stat.S_IMODE(st.st_mode), mtime=st.st_mtime)
