"""The host's client for the guest agent (paddock.guest.v1 over gRPC).

Protobuf stops here: callers get the typed objects below, built at the
boundary, and errors that are ``GuestError`` subclasses wrapping the gRPC
status. This module and the generated code are the only users of grpc.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc
import grpc.aio

from paddock.core.errors import PaddockError
from paddock.guest.tunnel import Tunnel
from paddock.guest.v1 import agent_pb2 as pb
from paddock.guest.v1 import agent_pb2_grpc as pb_grpc

BOOT_KEY_METADATA = "paddock-boot-key"


class GuestError(PaddockError):
    """The guest agent refused or failed a request."""


class GuestUnavailable(GuestError):
    """The guest agent cannot be reached (the VM is down or still booting)."""


class PathOutsideWorkspace(GuestError):
    """A path that is not inside the workspace."""


class GuestNotFound(GuestError):
    """No such file or folder in the workspace."""


class GuestDenied(GuestError):
    """The guest refused (read-only, permission, or a wrong boot key)."""


class GuestNoSpace(GuestError):
    """The guest or the workspace is out of space."""


_STATUS_ERRORS: dict[grpc.StatusCode, type[GuestError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: PathOutsideWorkspace,
    grpc.StatusCode.NOT_FOUND: GuestNotFound,
    grpc.StatusCode.PERMISSION_DENIED: GuestDenied,
    grpc.StatusCode.UNAUTHENTICATED: GuestDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: GuestNoSpace,
    grpc.StatusCode.UNAVAILABLE: GuestUnavailable,
}


def _raise(exc: grpc.aio.AioRpcError) -> NoReturn:
    code = exc.code()
    cls = _STATUS_ERRORS.get(code, GuestError)
    detail = exc.details() or code.name.lower()
    if cls is GuestUnavailable:
        raise GuestUnavailable("The sandbox is not answering.") from exc
    raise cls(detail) from exc


class Stream(enum.Enum):
    STDOUT = "stdout"
    STDERR = "stderr"


class ExitReason(enum.Enum):
    EXITED = "exited"
    SIGNALED = "signaled"
    TIMED_OUT = "timed_out"
    START_FAILED = "start_failed"


@dataclass(frozen=True)
class ExecStarted:
    exec_id: str
    pid: int


@dataclass(frozen=True)
class ExecOutput:
    stream: Stream
    data: bytes


@dataclass(frozen=True)
class ExecResult:
    reason: ExitReason
    exit_code: int
    signal: int
    duration_s: float
    message: str

    @property
    def shell_code(self) -> int:
        """The exit status a shell would report (timeout(1)'s 124 for a timeout)."""
        if self.reason is ExitReason.EXITED:
            return self.exit_code
        if self.reason is ExitReason.TIMED_OUT:
            return 124
        if self.reason is ExitReason.START_FAILED:
            return 127
        return 128 + self.signal

    @classmethod
    def from_pb(cls, m: pb.ExecExit) -> ExecResult:
        reasons = {
            pb.EXIT_REASON_EXITED: ExitReason.EXITED,
            pb.EXIT_REASON_SIGNALED: ExitReason.SIGNALED,
            pb.EXIT_REASON_TIMED_OUT: ExitReason.TIMED_OUT,
            pb.EXIT_REASON_START_FAILED: ExitReason.START_FAILED,
        }
        if m.reason not in reasons:
            raise GuestError(f"the guest sent an exit status without a reason ({m.reason})")
        return cls(reasons[m.reason], m.exit_code, m.signal, m.duration_s, m.message)


ExecEvent = ExecStarted | ExecOutput | ExecResult


class FileType(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    OTHER = "other"


_FILE_TYPES = {
    pb.FILE_TYPE_FILE: FileType.FILE,
    pb.FILE_TYPE_DIRECTORY: FileType.DIRECTORY,
    pb.FILE_TYPE_SYMLINK: FileType.SYMLINK,
}


@dataclass(frozen=True)
class FileInfo:
    path: str
    type: FileType
    size: int
    mode: int
    mtime: float

    @classmethod
    def from_pb(cls, m: pb.FileInfo) -> FileInfo:
        return cls(m.path, _FILE_TYPES.get(m.type, FileType.OTHER), m.size, m.mode, m.mtime)


@dataclass(frozen=True)
class GuestInfo:
    agent_version: str
    kernel: str
    uptime_s: float
    mounts: tuple[tuple[str, str, bool], ...]


@dataclass(frozen=True)
class ProcessStartedEvent:
    seq: int
    time_unix: float
    exec_id: str
    pid: int
    argv: tuple[str, ...]
    cwd: str


@dataclass(frozen=True)
class ProcessExitedEvent:
    seq: int
    time_unix: float
    exec_id: str
    pid: int
    result: ExecResult


@dataclass(frozen=True)
class FileChangedEvent:
    seq: int
    time_unix: float
    path: str
    removed: bool
    size: int


GuestEvent = ProcessStartedEvent | ProcessExitedEvent | FileChangedEvent


def _event_from_pb(m: pb.GuestEvent) -> GuestEvent | None:
    kind = m.WhichOneof("kind")
    if kind == "process_started":
        p = m.process_started
        return ProcessStartedEvent(m.seq, m.time_unix, p.exec_id, p.pid, tuple(p.argv), p.cwd)
    if kind == "process_exited":
        x = m.process_exited
        return ProcessExitedEvent(m.seq, m.time_unix, x.exec_id, x.pid, ExecResult.from_pb(x.exit))
    if kind == "file_changed":
        f = m.file_changed
        return FileChangedEvent(m.seq, m.time_unix, f.path, f.change == pb.FileChanged.CHANGE_REMOVED, f.size)
    return None


class GuestClient:
    """One gRPC channel to one VM's agent, over the VM's owner-only unix socket."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._channel = grpc.aio.insecure_channel(
            f"unix:{socket_path}",
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.enable_retries", 0),
            ],
        )
        self._stub = pb_grpc.GuestAgentStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = ()

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until the agent answers Health. Raises GuestUnavailable after ``timeout_s``."""
        try:
            await self._stub.Health(pb.HealthRequest(), wait_for_ready=True, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise GuestUnavailable(f"The sandbox did not become ready within {timeout_s:.0f} s.") from exc
            _raise(exc)

    async def claim(
        self, key: bytes | None = None, *, mount_tags: tuple[str, ...] = (), share_handles: int = 0
    ) -> None:
        """Bind this boot to a fresh key; every later call carries it. The guest also gets the
        host's clock and fresh randomness (a guest restored from a snapshot needs both), and
        mounts the shares named in ``mount_tags`` (attached after a restore) before answering.
        ``share_handles``: how many files the share daemon can hold open (the guest lets go of
        cached files before that)."""
        key = key or secrets.token_bytes(32)
        request = pb.ClaimRequest(
            boot_key=key,
            unix_time_ns=time.time_ns(),
            entropy=secrets.token_bytes(64),
            mount_tags=list(mount_tags),
            share_handles=min(share_handles, 2**32 - 1),
        )
        try:
            await self._stub.Claim(request, timeout=30 if mount_tags else 10)
        except grpc.aio.AioRpcError as exc:
            _raise(exc)
        self._metadata = ((BOOT_KEY_METADATA, key.hex()),)

    async def _unary(self, method: Any, request: Any, deadline_s: float = 60.0) -> Any:
        try:
            return await method(request, metadata=self._metadata, timeout=deadline_s)
        except grpc.aio.AioRpcError as exc:
            _raise(exc)

    async def health(self) -> bool:
        resp = await self._unary(self._stub.Health, pb.HealthRequest(), deadline_s=10)
        return bool(resp.ready)

    async def info(self) -> GuestInfo:
        r = await self._unary(self._stub.Info, pb.InfoRequest())
        return GuestInfo(r.agent_version, r.kernel, r.uptime_s, tuple((m.tag, m.path, m.read_only) for m in r.mounts))

    async def exec(
        self,
        argv: list[str],
        *,
        cwd: str = "",
        env: Mapping[str, str] | None = None,
        stdin: bytes = b"",
        timeout_s: float = 0.0,
    ) -> AsyncIterator[ExecEvent]:
        """Run ``argv`` in the guest; yields ExecStarted, ExecOutput..., then one ExecResult.

        Stopping the iteration (or cancelling the task) cancels the call and
        the guest kills the whole process group.
        """
        request = pb.ExecRequest(argv=argv, cwd=cwd, env=dict(env or {}), stdin=stdin, timeout_s=timeout_s)
        call = self._stub.Exec(request, metadata=self._metadata)
        got_exit = False
        try:
            async for ev in call:
                kind = ev.WhichOneof("kind")
                if kind == "started":
                    yield ExecStarted(ev.started.exec_id, ev.started.pid)
                elif kind == "output":
                    stream = Stream.STDERR if ev.output.stream == pb.OUTPUT_STREAM_STDERR else Stream.STDOUT
                    yield ExecOutput(stream, ev.output.data)
                elif kind == "exit":
                    got_exit = True
                    yield ExecResult.from_pb(ev.exit)
        except grpc.aio.AioRpcError as exc:
            _raise(exc)
        finally:
            if not got_exit:
                call.cancel()
        if not got_exit:
            raise GuestUnavailable("The sandbox stopped before the command finished.")

    async def run(self, argv: list[str], **kw: Any) -> tuple[bytes, bytes, ExecResult]:
        """Run to completion and collect the output."""
        out, err = bytearray(), bytearray()
        result: ExecResult | None = None
        async for ev in self.exec(argv, **kw):
            if isinstance(ev, ExecOutput):
                (out if ev.stream is Stream.STDOUT else err).extend(ev.data)
            elif isinstance(ev, ExecResult):
                result = ev
        assert result is not None
        return bytes(out), bytes(err), result

    async def read_file(self, path: str, *, offset: int = 0, max_bytes: int = 0) -> tuple[bytes, int, bool]:
        """Returns (data, total size, reached end)."""
        r = await self._unary(self._stub.ReadFile, pb.ReadFileRequest(path=path, offset=offset, max_bytes=max_bytes))
        return bytes(r.data), int(r.size), bool(r.eof)

    async def write_file(self, path: str, data: bytes, *, mode: int = 0, create_parents: bool = True) -> int:
        r = await self._unary(
            self._stub.WriteFile,
            pb.WriteFileRequest(path=path, data=data, mode=mode, create_parents=create_parents),
        )
        return int(r.size)

    async def list_dir(
        self, path: str = "", *, recursive: bool = False, max_entries: int = 0
    ) -> tuple[list[FileInfo], bool]:
        r = await self._unary(
            self._stub.ListDir, pb.ListDirRequest(path=path, recursive=recursive, max_entries=max_entries)
        )
        return [FileInfo.from_pb(e) for e in r.entries], bool(r.truncated)

    async def stat(self, path: str) -> FileInfo:
        r = await self._unary(self._stub.Stat, pb.StatRequest(path=path))
        return FileInfo.from_pb(r.info)

    async def remove(self, path: str, *, recursive: bool = False) -> None:
        await self._unary(self._stub.Remove, pb.RemoveRequest(path=path, recursive=recursive))

    async def configure(self, *, env: Mapping[str, str], ca_pem: bytes = b"") -> None:
        """Environment for every later command (the egress proxy) and the gateway's CA certificate."""
        await self._unary(self._stub.Configure, pb.ConfigureRequest(env=dict(env), ca_pem=ca_pem))

    async def egress_tunnel(self, gateway_port: int) -> None:
        """Carry the guest's connections to 127.0.0.1:3128 (guest) to the gateway on host loopback.

        Runs until cancelled or the VM goes away. Each guest connection becomes
        one TCP connection from this process to the gateway, nothing else.
        """
        tunnel = Tunnel(gateway_port)
        call = self._stub.Egress(tunnel.requests(), metadata=self._metadata)
        try:
            async for frame in call:
                await tunnel.on_frame(frame)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                _raise(exc)
        finally:
            call.cancel()
            await tunnel.close()

    async def events(self) -> AsyncIterator[GuestEvent]:
        """The guest's live event stream (processes, file changes)."""
        call = self._stub.Events(pb.EventsRequest(), metadata=self._metadata)
        try:
            async for m in call:
                ev = _event_from_pb(m)
                if ev is not None:
                    yield ev
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            _raise(exc)
        except asyncio.CancelledError:
            call.cancel()
            raise
