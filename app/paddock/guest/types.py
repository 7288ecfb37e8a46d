"""Typed objects built at the boundary from the guest agent's protobuf messages, and the
errors a guest call raises. Everything the guest sends is cut to a bound here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from paddock.core.errors import PaddockError
from paddock.core.text import shown
from paddock.guest.v1 import agent_pb2 as pb


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
    # The seq of the command's ProcessExited event: once the guest's event stream has reached it, it
    # holds every event of the command, its finished files too (0: not known).
    seq: int = field(default=0, compare=False)

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
        return cls(reasons[m.reason], m.exit_code, m.signal, m.duration_s, _cut(m.message), int(m.seq))


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
    """A file the guest reports written (by a file tool or any command) or removed. ``path`` is
    checked at the boundary: relative, inside the folder, bounded, control characters escaped."""

    seq: int
    time_unix: float
    path: str
    removed: bool
    size: int
    writing: bool = False  # still being written (a later event says written)
    exec_id: str = ""  # the command that wrote it, when the guest could tell


GuestEvent = ProcessStartedEvent | ProcessExitedEvent | FileChangedEvent


# What the host keeps of strings the guest sends in events (a guest can send anything up to the
# channel's message limit; these go into the audit log and the window).
EVENT_TEXT_MAX = 4096
EVENT_ARGS_MAX = 256
PATH_MAX = 1024  # a file name shown or recorded (longer ones are cut, and say so)
READ_MAX = 16 * 1024 * 1024  # one ReadFile answer, whatever the guest sends


def _cut(text: str, limit: int = EVENT_TEXT_MAX) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} characters cut]"


def safe_relative(path: str) -> str | None:
    """A path the guest sent, fit to show and record: relative, no ``..``, bounded, control and
    direction characters escaped. None when it names nothing inside the folder."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\x00" in path or any(p in ("", ".", "..") for p in parts):
        return None
    return _cut(shown(path), PATH_MAX)


def _event_from_pb(m: pb.GuestEvent) -> GuestEvent | None:
    kind = m.WhichOneof("kind")
    if kind == "process_started":
        p = m.process_started
        argv = [_cut(a) for a in p.argv[:EVENT_ARGS_MAX]]
        if len(p.argv) > EVENT_ARGS_MAX:
            argv.append(f"… [{len(p.argv) - EVENT_ARGS_MAX} arguments cut]")
        return ProcessStartedEvent(m.seq, m.time_unix, _cut(p.exec_id, 64), p.pid, tuple(argv), _cut(p.cwd))
    if kind == "process_exited":
        x = m.process_exited
        return ProcessExitedEvent(m.seq, m.time_unix, _cut(x.exec_id, 64), x.pid, ExecResult.from_pb(x.exit))
    if kind == "file_changed":
        f = m.file_changed
        path = safe_relative(f.path)
        if path is None:
            return None  # not a name inside the folder: neither shown nor recorded as one
        removed = f.change == pb.FileChanged.CHANGE_REMOVED
        return FileChangedEvent(
            m.seq,
            m.time_unix,
            path,
            removed,
            max(0, f.size),
            f.change == pb.FileChanged.CHANGE_WRITING,
            _cut(f.exec_id, 64),
        )
    return None
