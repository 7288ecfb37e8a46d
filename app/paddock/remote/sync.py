"""The folder on a sandbox host: a per-session workspace on the server, kept in step over SFTP.

Only what differs travels, by SHA-256: ``push`` before a command sends the person's files the
server's copy lacks; ``pull`` after it brings back what the command changed. Names from the
server are untrusted: each must be a plain relative path, and every local write goes through
``paddock.core.beneath`` (no link followed anywhere on the way, written to a temporary name and
renamed, so a dropped connection never leaves a half-written file). A file the person changed
on this computer meanwhile is not overwritten: it is reported as a conflict and kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import paramiko

from paddock.core import beneath
from paddock.remote.ssh import Connection, RemoteError

NAME_MAX = 255
PATH_MAX = 4096


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


class FolderSync:
    def __init__(self, connection: Connection, session: str, folder: Path, workspace: str) -> None:
        self.connection = connection
        self.session = session
        self.folder = folder
        self.workspace = workspace
        self.base: dict[str, str] = {}  # what both sides held after the last sync
        self._hashes: dict[str, tuple[int, int, str]] = {}  # rel -> (size, mtime_ns, sha256)
        self._sftp: paramiko.SFTPClient | None = None
        self._pushed = False

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self.connection.sftp()
        return self._sftp

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()

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

    def remote(self) -> tuple[dict[str, str], list[str]]:
        """The server's ``{rel: sha256}``, with the names that are not plain paths set aside."""
        result = self.connection.run("manifest", "--session", self.session)
        if result.code != 0:
            raise RemoteError(f"The sandbox host could not list the workspace: {result.err.decode(errors='replace')}")
        try:
            raw = json.loads(result.out)
        except ValueError as exc:
            raise RemoteError("The sandbox host sent an unreadable list of the workspace.") from exc
        if not isinstance(raw, dict):
            raise RemoteError("The sandbox host sent an unreadable list of the workspace.")
        out, refused = {}, []
        for rel, digest in raw.items():
            ok = safe_rel(rel)
            if ok is None or not isinstance(digest, str) or len(digest) != 64:
                refused.append(repr(rel)[:200])
            else:
                out[ok] = digest
        return out, refused

    # ------------------------------------------------------------------ to the server

    def push(self, *, ask: bool = False) -> SyncReport:
        """Send what the server's copy lacks; remove there what is gone here. What the server
        holds is known from the last sync (each command's changes were brought back after it);
        ``ask`` (and the first push) lists the server's copy instead."""
        report = SyncReport()
        here = self.local()
        if ask or not self._pushed:
            there, report.refused = self.remote()
            self._pushed = True
        else:
            there = dict(self.base)
        for rel, digest in sorted(here.items()):
            if there.get(rel) != digest:
                report.bytes += self._upload(rel)
                report.sent.append(rel)
        for rel in sorted(set(there) - set(here)):
            self._remote_path(rel)
            with contextlib.suppress(FileNotFoundError):
                self.sftp.remove(self._remote(rel))
        self.base = dict(here)
        return report

    def _remote(self, rel: str) -> str:
        return f"{self.workspace}/{rel}"

    def _remote_path(self, rel: str) -> None:
        """Make ``rel``'s parents on the server, refusing a link anywhere on the way (the guest
        can leave one there, pointing anywhere in the server account)."""
        parts = rel.split("/")
        at = self.workspace
        for name in parts[:-1]:
            at = f"{at}/{name}"
            try:
                st = self.sftp.lstat(at)
            except FileNotFoundError:
                self.sftp.mkdir(at, 0o700)
                continue
            if st.st_mode is None or not stat.S_ISDIR(st.st_mode):
                raise RemoteError(f"{rel}: {name} in the server's copy is not a folder; the file was not sent.")
        try:
            st = self.sftp.lstat(self._remote(rel))
        except FileNotFoundError:
            return
        if st.st_mode is not None and stat.S_ISLNK(st.st_mode):
            self.sftp.remove(self._remote(rel))

    def _upload(self, rel: str) -> int:
        self._remote_path(rel)
        tmp = f"{self.workspace}/.paddock-sync-{secrets.token_hex(6)}"
        data = beneath.read_file(self.folder, rel, 1 << 34)
        with self.sftp.open(tmp, "wb") as fh:
            fh.set_pipelined(True)
            fh.write(data)
        mode = (beneath.lstat(self.folder, rel) or os.stat(self.folder)).st_mode & 0o755
        self.sftp.chmod(tmp, mode | 0o600)
        self.sftp.posix_rename(tmp, self._remote(rel))
        return len(data)

    # ------------------------------------------------------------------ back from the server

    def pull(self) -> SyncReport:
        """Bring back what changed on the server since the last sync (see the module's notes)."""
        report = SyncReport()
        there, report.refused = self.remote()
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
            self.base[rel] = digest
            report.changed.append(rel)
        for rel in sorted(set(self.base) - set(there)):
            if here.get(rel) == self.base[rel]:
                beneath.remove(self.folder, rel)
                report.removed.append(rel)
            elif rel in here:
                report.conflicts.append(rel)
            del self.base[rel]
        return report

    def _download(self, rel: str, digest: str) -> int:
        at = self.workspace
        for name in rel.split("/"):  # no link on the server's side either
            at = f"{at}/{name}"
            st = self.sftp.lstat(at)
            if st.st_mode is not None and stat.S_ISLNK(st.st_mode):
                raise RemoteError("a link on the server's side; not brought back")
        with self.sftp.open(self._remote(rel), "rb") as fh:
            fh.prefetch()
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != digest:
            raise RemoteError("it changed while it was being brought back")
        self._parents(rel)
        beneath.write_file(self.folder, rel, data)
        return len(data)

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
