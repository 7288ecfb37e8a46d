"""The host's side of the guest agent API: the only user of grpc and the generated code."""

import os

# Before grpc loads: the engine forks QEMU and virtiofsd, and gRPC's fork
# handlers only print warnings for a process that never uses gRPC in a child.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from paddock.guest.client import GuestClient
from paddock.guest.idle import IdleGate
from paddock.guest.types import (
    ExecEvent,
    ExecOutput,
    ExecResult,
    ExecStarted,
    ExitReason,
    FileChangedEvent,
    FileInfo,
    FileType,
    GuestDenied,
    GuestError,
    GuestEvent,
    GuestInfo,
    GuestNoSpace,
    GuestNotFound,
    GuestUnavailable,
    PathOutsideWorkspace,
    ProcessExitedEvent,
    ProcessStartedEvent,
    Stream,
)

__all__ = [
    "ExecEvent",
    "ExecOutput",
    "ExecResult",
    "ExecStarted",
    "ExitReason",
    "FileChangedEvent",
    "FileInfo",
    "FileType",
    "GuestClient",
    "GuestDenied",
    "GuestError",
    "GuestEvent",
    "GuestInfo",
    "GuestNoSpace",
    "GuestNotFound",
    "GuestUnavailable",
    "IdleGate",
    "PathOutsideWorkspace",
    "ProcessExitedEvent",
    "ProcessStartedEvent",
    "Stream",
]
