"""The folder on a sandbox host: a per-session workspace on the server, kept in step over SSH.

Only what differs travels, by SHA-256: ``push`` before a command sends the person's files the
server's copy lacks; ``pull`` after it brings back what the command changed. Names from the
server are untrusted: each must be a plain relative path, and every local write goes through
``paddock.core.beneath`` (no link followed anywhere on the way, written to a temporary name and
renamed, so a dropped connection never leaves a half-written file). A file the person changed
on this computer meanwhile is not overwritten: it is reported as a conflict and kept. On the
server, files are moved by ``paddock remote files`` (``paddock.remote.files``), never by generic
SFTP paths: the guest can swap any folder there for a link between a check and a use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import paramiko

from paddock.core import beneath
from paddock.remote.ssh import Connection, RemoteError

NAME_MAX = 255
PATH_MAX = 4096
FILE_MAX = 1 << 33  # 8 GiB: a larger file is not carried (named in the report)
CHUNK = 1 << 20


@dataclass
class SyncReport:
    sent: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # brought back from the server
    removed: list[str] = field(default_factory=list)  # removed here because the command removed them
    conflicts: list[str] = field(default_factory=list)  # changed both here and there: the local one kept
    refused: list[str] = field(default_factory=list)  # names from the server that are not plain paths
    bytes: int = 0


def safe_rel(rel: object) -> str | None:
    """``rel`` as a plain relative path inside the folder, or None when it is not one."""
    if not isinstance(rel, str) or not rel or len(rel) > PATH_MAX or "\x00" in rel or "\n" in rel:
        return None
    pure = PurePosixPath(rel)
    if pure.is_absolute() or any(p in ("..", ".", "") or len(p) > NAME_MAX for p in pure.parts):
        return None
    if pure.as_posix() != rel:
        return None
    return rel


def _hash_file(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


class _Files:
    """The server's ``paddock remote files`` over one channel (see ``paddock.remote.files``)."""

    def __init__(self, connection: Connection, session: str) -> None:
        self.chan = connection.channel("files", "--session", session)
        self.reader = self.chan.makefile("rb")

    def send(self, req: dict[str, object], data: bytes = b"") -> None:
        self.chan.sendall(json.dumps(req).encode() + b"\n" + data)

    def answer(self) -> dict[str, object]:
        line = self.reader.readline(1 << 16)
        if not line:
            raise RemoteError("The sandbox host stopped answering file requests.")
        try:
            said = json.loads(line)
        except ValueError as exc:
            raise RemoteError("The sandbox host sent an unreadable answer.") from exc
        if not isinstance(said, dict):
            raise RemoteError("The sandbox host sent an unreadable answer.")
        return said

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            self.chan.close()


class FolderSync:
    def __init__(self, connection: Connection, session: str, folder: Path, workspace: str) -> None:
        self.connection = connection
        self.session = session
        self.folder = folder
        self.workspace = workspace
        self.base: dict[str, str] = {}  # what both sides held after the last sync
        self._hashes: dict[str, tuple[int, int, str]] = {}  # rel -> (size, mtime_ns, sha256)
        self._files: _Files | None = None
        self._pushed = False
        self.lock = threading.Lock()  # one sync at a time: base and _hashes are shared

    @property
    def files(self) -> _Files:
        if self._files is None:
            self._files = _Files(self.connection, self.session)
        return self._files

    def close(self) -> None:
        if self._files is not None:
            self._files.close()
            self._files = None

    # ------------------------------------------------------------------ both sides

    def local(self) -> dict[str, str]:
        """``{rel: sha256}`` of the regular files in the folder (links never followed)."""
        out: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(self.folder, followlinks=False):
            base = Path(dirpath)
            dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]
            for name in filenames:
                path = base / name
                rel = path.relative_to(self.folder).as_posix()
                try:
                    st = path.lstat()
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                known = self._hashes.get(rel)
                if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
                    out[rel] = known[2]
                    continue
                digest = _hash_file(path)
                if digest is not None:
                    self._hashes[rel] = (st.st_size, st.st_mtime_ns, digest)
                    out[rel] = digest
        return out

    def remote(self) -> tuple[dict[str, str], list[str], set[str]]:
        """The server's ``{rel: sha256}``, the names that are not plain paths (set aside), and the
        files the server could not read now (neither removed here nor brought back)."""
        result = self.connection.run("manifest", "--session", self.session)
        if result.code != 0:
            raise RemoteError(f"The sandbox host could not list the workspace: {result.err.decode(errors='replace')}")
        try:
            raw = json.loads(result.out)
        except ValueError as exc:
            raise RemoteError("The sandbox host sent an unreadable list of the workspace.") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("files"), dict):
            raise RemoteError("The sandbox host sent an unreadable list of the workspace.")
        out, refused = {}, []
        for rel, digest in raw["files"].items():
            ok = safe_rel(rel)
            if ok is None or not isinstance(digest, str) or len(digest) != 64:
                refused.append(repr(rel)[:200])
            else:
                out[ok] = digest
        unreadable = {r for r in raw.get("unreadable") or [] if isinstance(r, str)}
        refused += [f"{r} (the sandbox host could not read it now)" for r in sorted(unreadable)]
        return out, refused, unreadable

    # ------------------------------------------------------------------ to the server

    def push(self, *, ask: bool = False) -> SyncReport:
        """Send what the server's copy lacks; remove there what is gone here. What the server
        holds is known from the last sync (each command's changes were brought back after it);
        ``ask`` (and the first push) lists the server's copy instead."""
        with self.lock:
            return self._push(ask)

    def _push(self, ask: bool) -> SyncReport:
        report = SyncReport()
        here = self.local()
        unreadable: set[str] = set()
        if ask or not self._pushed:
            there, report.refused, unreadable = self.remote()
            self._pushed = True
        else:
            there = dict(self.base)
        for rel, digest in sorted(here.items()):
            if there.get(rel) != digest:
                try:
                    report.bytes += self._upload(rel, digest)
                except (beneath.UnsafePath, RemoteError) as exc:
                    report.refused.append(f"{rel} ({exc.message})")
                    here.pop(rel)
                    continue
                report.sent.append(rel)
        for rel in sorted(set(there) - set(here) - unreadable):
            self.files.send({"op": "rm", "path": rel})
            said = self.files.answer()
            if not said.get("ok"):
                report.refused.append(f"{rel} ({said.get('error')})")
        self.base = dict(here)
        return report

    def _upload(self, rel: str, digest: str) -> int:
        """Stream the file there (1 MiB at a time, hashed on the way); the server renames it in
        place only when the hash it got is the one sent after the bytes."""
        with beneath.parent_fd(self.folder, rel) as (dfd, name):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
            except OSError as exc:
                raise beneath.UnsafePath(f"cannot be opened ({exc.strerror})") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise beneath.UnsafePath("not a regular file")
            if st.st_size > FILE_MAX:
                raise beneath.UnsafePath(f"larger than {FILE_MAX >> 30} GiB; not sent")
            self.files.send({"op": "put", "path": rel, "mode": stat.S_IMODE(st.st_mode), "size": st.st_size})
            h, left = hashlib.sha256(), st.st_size
            try:
                while left:
                    chunk = os.read(fd, min(CHUNK, left)) or bytes(min(CHUNK, left))  # shrunk: padded, refused below
                    h.update(chunk)
                    self.files.chan.sendall(chunk)
                    left -= len(chunk)
            except BaseException:
                self.close()  # the request stream is out of step: the next one opens a new channel
                raise
        finally:
            os.close(fd)
        sent = h.hexdigest()
        self.files.send({"sha256": sent if sent == digest else "changed"})
        said = self.files.answer()
        if not said.get("ok"):
            raise RemoteError(str(said.get("error") or "the sandbox host refused it"))
        return st.st_size

    # ------------------------------------------------------------------ back from the server

    def pull(self) -> SyncReport:
        """Bring back what changed on the server since the last sync (see the module's notes)."""
        with self.lock:
            return self._pull()

    def _pull(self) -> SyncReport:
        report = SyncReport()
        there, report.refused, unreadable = self.remote()
        here = self.local()
        for rel, digest in sorted(there.items()):
            before = self.base.get(rel)
            if digest == before:
                continue
            now = here.get(rel)
            if now == digest:
                self.base[rel] = digest
                continue
            try:
                if now != before or (now is None and beneath.lstat(self.folder, rel) is not None):
                    report.conflicts.append(rel)
                    self.base[rel] = digest
                    continue
                report.bytes += self._download(rel, digest)
            except (beneath.UnsafePath, RemoteError) as exc:
                report.refused.append(f"{rel} ({exc.message})")
                continue
            except OSError as exc:  # this computer's side (disk full, no permission): this file only
                report.refused.append(f"{rel} (could not be written here: {exc.strerror})")
                continue
            self.base[rel] = digest
            report.changed.append(rel)
        for rel in sorted(set(self.base) - set(there) - unreadable):
            try:
                if here.get(rel) == self.base[rel]:
                    beneath.remove(self.folder, rel)
                    report.removed.append(rel)
                elif rel in here:
                    report.conflicts.append(rel)
            except (beneath.UnsafePath, OSError) as exc:
                report.refused.append(f"{rel} (could not be removed here: {exc})")
            del self.base[rel]
        return report

    def _download(self, rel: str, digest: str) -> int:
        """Stream the file into a new temporary file beside its place here, hashed on the way;
        renamed in only when the hash is the one listed."""
        self.files.send({"op": "get", "path": rel, "max": FILE_MAX})
        said = self.files.answer()
        if not said.get("ok"):
            raise RemoteError(str(said.get("error") or "the sandbox host refused it"))
        size, mode = said.get("size"), said.get("mode")
        if not isinstance(size, int) or not 0 <= size <= FILE_MAX or not isinstance(mode, int):
            raise RemoteError("The sandbox host sent an unreadable answer.")
        try:
            self._parents(rel)
        except (beneath.UnsafePath, OSError):
            self._drain(size)
            raise
        with beneath.parent_fd(self.folder, rel) as (dfd, name):
            tmp = f".paddock-sync-{secrets.token_hex(6)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                try:
                    h, left = hashlib.sha256(), size
                    while left:
                        chunk = self.files.reader.read(min(CHUNK, left))
                        if not chunk:
                            raise RemoteError("The connection ended in the middle of a file.")
                        h.update(chunk)
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view) :]
                        left -= len(chunk)
                except OSError:
                    self._drain(left)
                    raise
                os.fchmod(fd, _local_mode(dfd, name))
            finally:
                os.close(fd)
            try:
                if h.hexdigest() != digest:
                    raise RemoteError("it changed while it was being brought back")
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=dfd)
        return size

    def _drain(self, left: int) -> None:
        while left > 0:
            chunk = self.files.reader.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)

    def _parents(self, rel: str) -> None:
        parts = rel.split("/")[:-1]
        for i in range(len(parts)):
            sub = "/".join(parts[: i + 1])
            st = beneath.lstat(self.folder, sub)
            if st is None:
                with beneath.parent_fd(self.folder, sub) as (dfd, name):
                    os.mkdir(name, 0o755, dir_fd=dfd)
            elif not stat.S_ISDIR(st.st_mode):
                raise beneath.UnsafePath(f"{sub} is not a folder here")


def _local_mode(dfd: int, name: str) -> int:
    """The mode a file brought back gets: the one it has here, or, for a new file, plain 0644. The
    server's word never makes a file executable on this computer (a guest's ``chmod +x`` stays in
    the sandbox; the person's own executable files stay executable)."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except OSError:
        return 0o644
    return stat.S_IMODE(st.st_mode) & 0o777 if stat.S_ISREG(st.st_mode) else 0o644
