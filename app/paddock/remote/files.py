"""``paddock remote files --session ID``: the workspace's files, moved by the server itself.

The guest writes the workspace (and can keep a process running there), so any folder in it may
become a link between a check and a use. Generic SFTP paths are therefore never used on it: the
person's Paddock sends requests over this command's stdin, and every step here goes through
descriptors (``paddock.core.beneath``: an ``openat`` walk with ``O_NOFOLLOW``; a file arrives in an
``O_EXCL`` temporary file in the *session* folder, which the guest cannot see, and is renamed into
the folder descriptor that was walked). The listing walks with ``os.fwalk`` and opens by descriptor.

The protocol: one JSON line per request, answered by one JSON line; bytes follow where said.

    {"op": "put", "path": P, "mode": M, "size": N} + N bytes + {"sha256": H}   -> {"ok": true}
    {"op": "get", "path": P, "max": N}      -> {"ok": true, "size": N, "mode": M} + N bytes
    {"op": "rm", "path": P}                  -> {"ok": true}
    any failure                              -> {"error": "..."}
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import IO, Any

from paddock.core import beneath
from paddock.core.errors import PaddockError

CHUNK = 1 << 20
MANIFEST_MAX_FILES = 200_000
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def manifest(home: Path) -> tuple[dict[str, str], list[str]]:
    """``({rel: sha256}, unreadable)`` for the regular files in ``home/workspace``. A file that
    cannot be opened now (EMFILE, a race) is named in ``unreadable``: the laptop then neither
    deletes nor brings it back. A file whose size, times and inode are as at the last listing
    keeps its hash (the guest cannot set a file's ctime, so a rewrite shows)."""
    root, cache_path = home / "workspace", home / "hashes.json"
    try:
        cache: dict[str, list[Any]] = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    out: dict[str, str] = {}
    fresh: dict[str, list[Any]] = {}
    unreadable: list[str] = []
    for dirpath, _dirs, filenames, dfd in os.fwalk(root, follow_symlinks=False):
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            try:
                fd = os.open(name, FILE_FLAGS, dir_fd=dfd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOENT, errno.ENXIO):
                    unreadable.append(rel)
                continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    continue
                key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
                known = cache.get(rel)
                if known is not None and known[:4] == key:
                    digest = str(known[4])
                else:
                    h = hashlib.sha256()
                    while chunk := os.read(fd, CHUNK):
                        h.update(chunk)
                    digest = h.hexdigest()
            except OSError:
                unreadable.append(rel)
                continue
            finally:
                os.close(fd)
            out[rel], fresh[rel] = digest, [*key, digest]
            if len(out) > MANIFEST_MAX_FILES:
                raise PaddockError(f"The workspace holds more than {MANIFEST_MAX_FILES} files.")
    with contextlib.suppress(OSError):
        tmp = home / "hashes.json.tmp"
        tmp.write_text(json.dumps(fresh))
        tmp.replace(cache_path)
    return out, unreadable


def _walk_make(root: Path, rel: str) -> tuple[int, str]:
    """A descriptor of ``rel``'s parent (made where missing, 0700), walked without following links."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise beneath.UnsafePath(f"{rel!r} is not a plain path inside the folder.")
    fd = os.open(root, beneath.DIR_FLAGS)
    try:
        for name in parts[:-1]:
            try:
                nxt = os.open(name, beneath.DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(name, 0o700, dir_fd=fd)
                nxt = os.open(name, beneath.DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise beneath.UnsafePath(f"{rel}: {name} is not a folder ({exc.strerror}).") from exc
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _copy_in(src: IO[bytes], fd: int, size: int) -> tuple[str, OSError | None]:
    """Read ``size`` bytes into ``fd``; a write error is kept and the rest still read (the stream
    stays in step)."""
    h = hashlib.sha256()
    left, failed = size, None
    while left:
        chunk = src.read(min(CHUNK, left))
        if not chunk:
            raise EOFError("the connection ended in the middle of a file")
        h.update(chunk)
        view = memoryview(chunk)
        while view and failed is None:
            try:
                view = view[os.write(fd, view) :]
            except OSError as exc:
                failed = exc
        left -= len(chunk)
    return h.hexdigest(), failed


def put(home: Path, src: IO[bytes], rel: str, mode: int, size: int) -> dict[str, Any]:
    tmp = f".put-{secrets.token_hex(8)}"
    hfd = os.open(home, beneath.DIR_FLAGS)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=hfd)
        try:
            got, failed = _copy_in(src, fd, size)
            os.fchmod(fd, (mode & 0o755) | 0o600)
        finally:
            os.close(fd)
        trailer = json.loads(src.readline() or b"{}")
        try:
            if failed is not None:
                return {"error": f"the server could not store it ({failed.strerror})"}
            if trailer.get("sha256") != got:
                return {"error": "it changed while it was being sent"}
            dfd, name = _walk_make(home / "workspace", rel)
            try:
                os.rename(tmp, name, src_dir_fd=hfd, dst_dir_fd=dfd)  # a link there is replaced, not followed
            finally:
                os.close(dfd)
            return {"ok": True}
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=hfd)
    finally:
        os.close(hfd)


def get(home: Path, out: IO[bytes], rel: str, limit: int) -> dict[str, Any] | None:
    with beneath.parent_fd(home / "workspace", rel) as (dfd, name):
        try:
            fd = os.open(name, FILE_FLAGS, dir_fd=dfd)
        except OSError as exc:
            raise beneath.UnsafePath(f"cannot be opened without following a link ({exc.strerror})") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return {"error": "not a regular file"}
        if st.st_size > limit:
            return {"error": f"larger than {limit} bytes"}
        _answer(out, {"ok": True, "size": st.st_size, "mode": stat.S_IMODE(st.st_mode)})
        left = st.st_size
        while left:  # a file that shrinks meanwhile is padded: the laptop's hash check refuses it
            chunk = os.read(fd, min(CHUNK, left)) or bytes(min(CHUNK, left))
            out.write(chunk)
            left -= len(chunk)
        out.flush()
        return None
    finally:
        os.close(fd)


def _answer(out: IO[bytes], fields: dict[str, Any]) -> None:
    out.write(json.dumps(fields).encode() + b"\n")
    out.flush()


def serve_files(home: Path) -> int:
    """Answer requests on stdin until it closes."""
    src, out = sys.stdin.buffer, sys.stdout.buffer
    while line := src.readline():
        answer: dict[str, Any] | None
        try:
            req = json.loads(line)
            op, rel = req["op"], str(req["path"])
            if op == "put":
                answer = put(home, src, rel, int(req["mode"]), int(req["size"]))
            elif op == "get":
                answer = get(home, out, rel, int(req["max"]))
            elif op == "rm":
                with contextlib.suppress(FileNotFoundError):
                    beneath.remove(home / "workspace", rel)
                answer = {"ok": True}
            else:
                answer = {"error": f"unknown request {op!r}"}
        except EOFError:
            return 1
        except (ValueError, KeyError, TypeError) as exc:
            _answer(out, {"error": f"a request that is not understood ({exc})"})
            return 2  # the stream may be out of step: stop
        except PaddockError as exc:
            answer = {"error": exc.message}
        except OSError as exc:
            answer = {"error": exc.strerror or str(exc)}
        if answer is not None:
            _answer(out, answer)
    return 0
