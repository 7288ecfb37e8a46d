"""The host's client for the guest agent (paddock.guest.v1 over gRPC).

Protobuf stops here: callers get the typed objects below, built at the
boundary, and errors that are ``GuestError`` subclasses wrapping the gRPC
status. This module and the generated code are the only users of grpc.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import grpc
import grpc.aio

from paddock.guest.idle import _Gated
from paddock.guest.tunnel import Tunnel
from paddock.guest.types import (
    READ_MAX,
    ExecEvent,
    ExecOutput,
    ExecResult,
    ExecStarted,
    FileInfo,
    GuestDenied,
    GuestError,
    GuestEvent,
    GuestInfo,
    GuestNoSpace,
    GuestNotFound,
    GuestUnavailable,
    PathOutsideWorkspace,
    Stream,
    _event_from_pb,
)
from paddock.guest.v1 import agent_pb2 as pb
from paddock.guest.v1 import agent_pb2_grpc as pb_grpc

BOOT_KEY_METADATA = "paddock-boot-key"


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


class GuestClient:
    """One gRPC channel to one VM's agent, over the VM's owner-only unix socket."""

    def __init__(self, socket_path: Path, *, interceptors: Sequence[grpc.aio.ClientInterceptor] = ()) -> None:
        self.socket_path = socket_path
        self._channel = grpc.aio.insecure_channel(
            f"unix:{socket_path}",
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.enable_retries", 0),
            ],
            interceptors=list(interceptors) or None,
        )
        self._stub = pb_grpc.GuestAgentStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = ()
        # The pause-when-idle gates among the interceptors (``paddock.guest.idle``): closed first.
        self._gates = list({id(i.gate): i.gate for i in interceptors if isinstance(i, _Gated)}.values())

    async def stop_pausing(self) -> None:
        """The sandbox is closing: its idle gate pauses the VM no more, and a pause under way has
        ended (``IdleGate.aclose``). Calls still go through. Idempotent."""
        for gate in self._gates:
            await gate.aclose()

    async def close(self) -> None:
        """Close the channel (every call on it is cancelled), the idle gate first: no pause of
        this VM starts or is still under way once this returns."""
        await self.stop_pausing()
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
        command_id: str = "",
    ) -> AsyncIterator[ExecEvent]:
        """Run ``argv`` in the guest; yields ExecStarted, ExecOutput..., then one ExecResult.

        ``command_id`` (1 to 64 of A-Z a-z 0-9 - _) is the id the command's events carry as
        ``exec_id``; empty: the guest makes one. Stopping the iteration (or cancelling the task)
        cancels the call and the guest kills the whole process group.
        """
        request = pb.ExecRequest(argv=argv, cwd=cwd, env=dict(env or {}), stdin=stdin, timeout_s=timeout_s,
                                 command_id=command_id)  # fmt: skip
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
        """Returns (data, total size, reached end). Never more than ``max_bytes`` (or ``READ_MAX``)
        comes back, whatever the guest sends."""
        limit = min(max_bytes, READ_MAX) if max_bytes > 0 else READ_MAX
        r = await self._unary(self._stub.ReadFile, pb.ReadFileRequest(path=path, offset=offset, max_bytes=limit))
        data = bytes(r.data)
        return data[:limit], int(r.size), bool(r.eof) and len(data) <= limit

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

    async def forget_cached(self) -> bool:
        """The host changed the shared folder behind the guest's back: have the guest kernel read
        it anew. False from an older agent without this call (its caches expire within a second)."""
        try:
            await self._stub.ForgetCached(pb.ForgetCachedRequest(), metadata=self._metadata, timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return False
            _raise(exc)
        return True

    async def sync(self) -> int:
        """A barrier on the event stream: the seq of the guest's last event, once the guest has
        published what its file watcher had queued (0 from an older agent without this call)."""
        try:
            r = await self._stub.Sync(pb.SyncRequest(), metadata=self._metadata, timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return 0
            _raise(exc)
        return int(r.seq)

    async def egress_tunnel(self, gateway_port: int, alive: Callable[[], bool] | None = None) -> None:
        """Carry the guest's connections to 127.0.0.1:3128 (guest) to the gateway on host loopback.

        Runs until cancelled or the VM goes away. Each guest connection becomes
        one TCP connection from this process to the gateway, nothing else.
        """
        tunnel = Tunnel(gateway_port, alive)
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

    async def events(self, opened: Callable[[int], None] | None = None) -> AsyncIterator[GuestEvent]:
        """The guest's live event stream (processes, file changes), in the guest's one order.
        ``opened`` is called with the seq the stream starts after, once the guest has it open:
        every event published from then on comes on this stream."""
        call = self._stub.Events(pb.EventsRequest(), metadata=self._metadata)
        try:
            async for m in call:
                if m.WhichOneof("kind") is None:  # the guest's "open from here" marker
                    if opened is not None:
                        opened(int(m.seq))
                    continue
                ev = _event_from_pb(m)
                if ev is not None:
                    yield ev
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            _raise(exc)
        finally:
            call.cancel()  # a stream the caller left (or was cancelled out of) ends in the guest too
