"""A sandbox on a sandbox host, seen from the person's machine: what ``paddock.sandbox`` needs of a
VM (state, failure, stop), plus the folder sync and the local socket for the guest agent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from paddock.core.paths import runtime_dir
from paddock.policy import SandboxHost
from paddock.remote.relay import AgentRelay
from paddock.remote.ssh import Connection, RemoteError
from paddock.remote.sync import FolderSync, SyncReport
from paddock.vm import VMState

log = logging.getLogger(__name__)
SERVE_TIMEOUT_S = 300.0  # a cold boot on a busy server under software emulation


class RemoteMachine:
    """The remote VM's stand-in: fails (with a plain reason) when the server says so or the
    connection drops; ``stop`` ends the serve channel, and the server then stops the VM and
    removes the session's folder."""

    def __init__(self, host: SandboxHost, connection: Connection, session: str, folder: Path) -> None:
        self.host = host
        self.connection = connection
        self.id = session
        self.folder = folder
        self.failure: str | None = None
        self.share_handles = 0
        self.accel = "tcg"
        self.sync: FolderSync | None = None
        self.relay: AgentRelay | None = None
        self._state = VMState.BOOTING
        self._failed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._serve: paramiko.Channel | None = None
        self._watcher: threading.Thread | None = None
        self._stopping = False

    @property
    def state(self) -> VMState:
        return self._state

    @property
    def paused(self) -> bool:
        """A sandbox host's VM is never paused from here (``Machine.paused``)."""
        return False

    @property
    def agent_socket(self) -> Path:
        assert self.relay is not None
        return self.relay.path

    async def failed(self) -> str:
        await self._failed.wait()
        return self.failure or "the sandbox stopped unexpectedly"

    async def fail(self, reason: str) -> None:
        if self._state in (VMState.STOPPED, VMState.FAILED):
            return
        self.failure = reason
        self._state = VMState.FAILED
        self._failed.set()
        await self.stop(keep_state=True)

    def mark_ready(self) -> None:
        self._state = VMState.READY

    def console_tail(self, limit: int = 2000) -> str:
        return ""

    @property
    def pids(self) -> dict[str, int]:
        return {}  # its processes run on the server

    # ------------------------------------------------------------------ starting

    @classmethod
    async def start(cls, host: SandboxHost, private_key: str | None, folder: Path, *, read_only: bool) -> RemoteMachine:
        """Connect, boot the sandbox on the server, send the folder, open the local agent socket."""
        connection = await asyncio.to_thread(Connection.open, host, private_key)
        machine = cls(host, connection, secrets.token_hex(8), folder)
        try:
            await asyncio.to_thread(machine._boot, read_only)
        except BaseException:
            await machine.stop()
            raise
        return machine

    def _boot(self, read_only: bool) -> None:
        args = ["serve", "--session", self.id, "--sessions", str(self.host.sessions)]
        self._serve = self.connection.channel(*(args + (["--read-only"] if read_only else [])))
        self._serve.settimeout(SERVE_TIMEOUT_S)
        try:
            line = self._serve.makefile("rb").readline()
        except (OSError, EOFError) as exc:
            raise RemoteError(f"The sandbox host {self.host.name!r} did not start the sandbox ({exc}).") from exc
        try:
            ready = json.loads(line) if line else {}
        except ValueError:
            ready = {}
        if not ready.get("ok"):
            err = ready.get("error") or self._stderr() or "it did not answer"
            raise RemoteError(f"The sandbox host {self.host.name!r} could not start the sandbox: {err}")
        try:
            self.share_handles, self.accel = int(ready.get("share_handles", 0)), str(ready.get("accel", "tcg"))
            workspace = str(ready["workspace"])
        except (ValueError, TypeError, KeyError) as exc:
            raise RemoteError(f"The sandbox host {self.host.name!r} sent an unreadable start answer.") from exc
        self._serve.settimeout(None)
        self._watcher = threading.Thread(target=self._watch, name=f"serve-{self.id}", daemon=True)
        self._watcher.start()
        self.sync = FolderSync(self.connection, self.id, self.folder, workspace)
        self._checked(self.sync.push)
        self.relay = AgentRelay(self.connection, self.id, runtime_dir() / f"r-{self.id}.sock")

    def _stderr(self) -> str:
        assert self._serve is not None
        with contextlib.suppress(OSError, EOFError):
            if self._serve.recv_stderr_ready():
                return self._serve.recv_stderr(4000).decode(errors="replace").strip()
        return ""

    def _watch(self) -> None:
        """The serve channel ends only when the server's sandbox stops or the connection drops."""
        assert self._serve is not None
        reason = f"The connection to the sandbox host {self.host.name!r} dropped."
        try:
            for line in self._serve.makefile("rb"):
                with contextlib.suppress(ValueError, AttributeError):
                    said = json.loads(line).get("failed")
                    if said:
                        reason = f"The sandbox on {self.host.name!r} stopped: {said}"
        except (OSError, EOFError):
            pass
        if not self._stopping:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.fail(reason)))

    # ------------------------------------------------------------------ the folder

    async def push(self) -> SyncReport:
        assert self.sync is not None
        return await self._sync_in_thread(self.sync.push)

    async def pull(self) -> SyncReport:
        assert self.sync is not None
        return await self._sync_in_thread(self.sync.pull)

    async def _sync_in_thread(self, fn: Callable[[], SyncReport]) -> SyncReport:
        return await asyncio.to_thread(self._checked, fn)

    def _checked(self, fn: Callable[[], SyncReport]) -> SyncReport:
        """Run a sync; say "dropped" only when the connection did drop (a local error such as a
        full disk is named as what it is; files this computer could not write are in the report)."""
        try:
            return fn()
        except RemoteError:
            raise
        except (OSError, EOFError, paramiko.SSHException, MemoryError) as exc:
            if isinstance(exc, (EOFError, paramiko.SSHException)) or not self.connection.alive:
                raise RemoteError(f"The connection to the sandbox host {self.host.name!r} dropped ({exc}).") from exc
            raise RemoteError(f"The folder could not be synced with {self.host.name!r}: {exc}") from exc

    # ------------------------------------------------------------------ stopping

    async def stop(self, *, keep_state: bool = False) -> None:
        self._stopping = True
        await asyncio.to_thread(self._close)
        if not keep_state:
            self._state = VMState.STOPPED

    def _close(self) -> None:
        if self.relay is not None:
            self.relay.close()
        if self.sync is not None:
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                self.sync.close()
        if self._serve is not None:
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                self._serve.shutdown_write()  # the server stops the VM and removes the session
                self._serve.close()
        self.connection.close()
