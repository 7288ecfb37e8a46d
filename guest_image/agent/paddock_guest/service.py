"""The GuestAgent servicer: thin methods over the modules that do the work, and how a failure
becomes a gRPC status."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from paddock.guest.v1 import agent_pb2 as pb
from paddock.guest.v1 import agent_pb2_grpc as pb_grpc
from paddock_guest import AGENT_VERSION, egress, files
from paddock_guest.claim import KeyBox, claim, virtiofs_mounts
from paddock_guest.config import uptime
from paddock_guest.events import EventHub, drain
from paddock_guest.exec import run_command
from paddock_guest.handles import KEEPER, drop_cached_inodes
from paddock_guest.jail import PathError, resolve_follow
from paddock_guest.watch import WATCHER


def _abort_for(context: grpc.ServicerContext, exc: BaseException) -> None:
    if isinstance(exc, PathError):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    if isinstance(exc, FileNotFoundError):
        context.abort(grpc.StatusCode.NOT_FOUND, f"not found: {exc.filename or ''}")
    if isinstance(exc, FileExistsError):
        context.abort(grpc.StatusCode.ALREADY_EXISTS, f"already exists: {exc.filename or ''}")
    if isinstance(exc, (IsADirectoryError, NotADirectoryError)):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc.strerror))
    if isinstance(exc, PermissionError):
        context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc.strerror))
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "no space left on the device")
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "read-only file system")
    if isinstance(exc, OSError):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{exc.strerror or exc}")
    context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")


def as_status(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every failure of a call becomes its gRPC status (``_abort_for``), never a traceback."""

    def wrapper(self: Agent, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except grpc.RpcError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            _abort_for(context, exc)

    wrapper.__name__ = fn.__name__
    return wrapper


class Agent(pb_grpc.GuestAgentServicer):  # type: ignore[misc]  # the generated servicer has no stub
    def __init__(self, hub: EventHub, key_box: KeyBox) -> None:
        self.hub = hub
        self.key_box = key_box
        self.extra_env: dict[str, str] = {}
        self.egress_lock = threading.Lock()

    def Claim(self, request: pb.ClaimRequest, context: grpc.ServicerContext) -> pb.ClaimResponse:
        answer = claim(request, context, self.key_box)
        WATCHER.ensure(self.hub)  # the shared folder is mounted now: report what commands write
        return answer

    def Health(self, request: pb.HealthRequest, context: grpc.ServicerContext) -> pb.HealthResponse:
        return pb.HealthResponse(ready=True)

    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        mounts = virtiofs_mounts()
        return pb.InfoResponse(
            agent_version=AGENT_VERSION,
            kernel=os.uname().release,
            uptime_s=uptime(),
            mounts=mounts,
        )

    def Exec(self, request: pb.ExecRequest, context: grpc.ServicerContext) -> Iterator[pb.ExecEvent]:
        if not request.argv:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "argv is empty")
        try:
            cwd = resolve_follow(request.cwd)
        except Exception as exc:  # noqa: BLE001
            _abort_for(context, exc)
        with KEEPER.watching():  # the share daemon's open files, while the command runs
            yield from run_command(request, context, cwd=cwd, hub=self.hub, extra_env=self.extra_env)

    @as_status
    def ReadFile(self, request: pb.ReadFileRequest, context: grpc.ServicerContext) -> pb.ReadFileResponse:
        return files.read_file(request)

    @as_status
    def WriteFile(self, request: pb.WriteFileRequest, context: grpc.ServicerContext) -> pb.WriteFileResponse:
        return files.write_file(request, self.hub)

    @as_status
    def ListDir(self, request: pb.ListDirRequest, context: grpc.ServicerContext) -> pb.ListDirResponse:
        return files.list_dir(request)

    @as_status
    def Stat(self, request: pb.StatRequest, context: grpc.ServicerContext) -> pb.StatResponse:
        return files.stat_path(request)

    @as_status
    def Remove(self, request: pb.RemoveRequest, context: grpc.ServicerContext) -> pb.RemoveResponse:
        return files.remove(request, self.hub)

    @as_status
    def Configure(self, request: pb.ConfigureRequest, context: grpc.ServicerContext) -> pb.ConfigureResponse:
        if request.ca_pem:
            egress.install_ca(request.ca_pem)
        self.extra_env = dict(request.env)
        return pb.ConfigureResponse()

    @as_status
    def ForgetCached(self, request: pb.ForgetCachedRequest, context: grpc.ServicerContext) -> pb.ForgetCachedResponse:
        drop_cached_inodes()
        return pb.ForgetCachedResponse()

    @as_status
    def Sync(self, request: pb.SyncRequest, context: grpc.ServicerContext) -> pb.SyncResponse:
        WATCHER.flush(self.hub)  # what the watcher has queued goes out first
        return pb.SyncResponse(seq=self.hub.seq)

    def Egress(
        self, request_iterator: Iterator[pb.EgressFrame], context: grpc.ServicerContext
    ) -> Iterator[pb.EgressFrame]:
        """Carry guest connections to 127.0.0.1:3128 to the host, one frame at a time."""
        yield from egress.tunnel(request_iterator, context, self.egress_lock)

    def Events(self, request: pb.EventsRequest, context: grpc.ServicerContext) -> Iterator[pb.GuestEvent]:
        q = self.hub.subscribe()
        context.add_callback(lambda: self.hub.unsubscribe(q))
        yield from drain(q, context, check_s=None)  # unsubscribe ends it: nothing wakes to look
