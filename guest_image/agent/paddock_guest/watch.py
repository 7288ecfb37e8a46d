"""Files written by any command in the shared folder, reported live as FileChanged events.

fanotify with a *mount* mark on /workspace, in its classic (non-FID) mode: the kernel reports
every write to a file on that mount, whoever made it, with a descriptor open on the file. The
path comes from that descriptor (/proc/self/fd), which is closed at once. Unlike inotify this
needs no watch per folder and pins no inodes, so it does not fight the handle keeper
(``handles.py``) that keeps the host's share daemon under its open-files limit.

Writes in progress (FAN_MODIFY) are reported at most about twice a second per file: the reader
pauses between batches, and the kernel merges the events that queue up for the same file
meanwhile. A finished write (FAN_CLOSE_WRITE) is reported as written. ``flush`` publishes what is
queued at once: a command's exit (``exec.py``) and ``Sync`` call it first, so the files a command
finished writing are on the event stream before its exit, in one order, without waiting for a
batch. The agent's own writes (the file tools) are skipped: it reports those itself. Removals and
renames are not reported (classic mode has no directory events).
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import stat
import struct
import threading
import time

from paddock.guest.v1 import agent_pb2 as pb
from paddock_guest import config
from paddock_guest.config import log
from paddock_guest.events import RUNS, EventHub

FAN_CLOEXEC = 0x1
FAN_CLASS_NOTIF = 0x0
FAN_MARK_ADD = 0x1
FAN_MARK_MOUNT = 0x10
FAN_MODIFY = 0x2
FAN_CLOSE_WRITE = 0x8
FAN_Q_OVERFLOW = 0x4000
FAN_NOFD = -1
AT_FDCWD = -100
METADATA = struct.Struct("=IBBHQii")  # struct fanotify_event_metadata
METADATA_VERSION = 3
BATCH_PAUSE_S = 0.5  # events for one file that queue up meanwhile are merged by the kernel
READ_SIZE = 64 * 1024
MAX_READS = 64  # per flush: the queue is emptied, but a flood cannot hold a command's exit forever

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_LIBC.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]


def _workspace_mounted() -> bool:
    with open("/proc/mounts") as fh:
        return any(line.split()[1:3] == [config.WORKSPACE, "virtiofs"] for line in fh)


def relative(fd: int) -> tuple[str, int] | None:
    """The workspace-relative path and size of the file behind ``fd``; None when it is not a
    regular file still linked inside the workspace."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink == 0:
        return None
    target = os.readlink(f"/proc/self/fd/{fd}".encode())
    root = config.WORKSPACE.encode() + b"/"
    if not target.startswith(root):
        return None
    # A name may be any bytes: invalid UTF-8 is shown as escapes (the host escapes the rest).
    return target[len(root) :].decode("utf-8", "backslashreplace"), st.st_size


class Watcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # one reader at a time, from read to publish: one order
        self._fd = -1
        self.overflows = 0

    def ensure(self, hub: EventHub) -> None:
        """Start watching once the shared folder is mounted (at start and after each claim)."""
        with self._lock:
            if self._fd >= 0 or not _workspace_mounted():
                return
            fd = _LIBC.fanotify_init(FAN_CLOEXEC | FAN_CLASS_NOTIF, os.O_RDONLY | os.O_CLOEXEC | os.O_LARGEFILE)
            if fd < 0:
                log(f"file watcher: not available ({os.strerror(ctypes.get_errno())})")
                return
            mask = FAN_MODIFY | FAN_CLOSE_WRITE
            if _LIBC.fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_MOUNT, mask, AT_FDCWD, config.WORKSPACE.encode()) < 0:
                log(f"file watcher: cannot watch {config.WORKSPACE} ({os.strerror(ctypes.get_errno())})")
                os.close(fd)
                return
            self._fd = fd
        threading.Thread(target=self._loop, args=(fd, hub), name="watch", daemon=True).start()
        log(f"file watcher: watching {config.WORKSPACE}")

    def _loop(self, fd: int, hub: EventHub) -> None:
        waiting = select.poll()
        waiting.register(fd, select.POLLIN)
        while True:
            try:
                waiting.poll()  # until the kernel has queued something
            except InterruptedError:
                continue
            if not self._publish_queued(fd, hub):
                return
            time.sleep(BATCH_PAUSE_S)  # a rate limit: writes to one file meanwhile are merged by the kernel

    def flush(self, hub: EventHub) -> None:
        """Publish what the kernel has queued now (a command's finished writes), before returning."""
        if self._fd >= 0:
            self._publish_queued(self._fd, hub)

    def _publish_queued(self, fd: int, hub: EventHub) -> bool:
        """Read and publish every event queued on ``fd``; False when the watcher is gone."""
        ready = select.poll()
        ready.register(fd, select.POLLIN)
        with self._reading:
            for _ in range(MAX_READS):
                if not ready.poll(0):
                    return True
                try:
                    buf = os.read(fd, READ_SIZE)
                except InterruptedError:
                    continue
                except OSError as exc:
                    if exc.errno in (errno.EBADF, errno.EINVAL):
                        log(f"file watcher: stopped ({exc.strerror})")
                        return False
                    # The kernel could not open the next file for us (a file its owner may not
                    # read, as mode 000): that one report is lost, the watcher goes on.
                    continue
                self._publish(buf, hub)
        return True

    def _publish(self, buf: bytes, hub: EventHub) -> None:
        me = os.getpid()
        changes: dict[str, tuple[bool, int, str]] = {}
        for mask, event_fd, pid in _events(buf):
            if mask & FAN_Q_OVERFLOW:
                self.overflows += 1
                log("file watcher: too many writes at once; some were not reported")
            if event_fd == FAN_NOFD:
                continue
            try:
                found = relative(event_fd) if pid != me else None
            except OSError:
                found = None
            finally:
                os.close(event_fd)
            if found is not None:
                path, size = found
                done = bool(mask & FAN_CLOSE_WRITE) or changes.get(path, (False, 0, ""))[0]
                changes[path] = (done, size, RUNS.of(pid))
        for path, (done, size, exec_id) in changes.items():
            change = pb.FileChanged.CHANGE_WRITTEN if done else pb.FileChanged.CHANGE_WRITING
            hub.publish(file_changed=pb.FileChanged(path=path, change=change, size=size, exec_id=exec_id))


def _events(buf: bytes) -> list[tuple[int, int, int]]:
    """(mask, fd, pid) of each event in one read."""
    out = []
    offset = 0
    while offset + METADATA.size <= len(buf):
        event_len, vers, _, _, mask, fd, pid = METADATA.unpack_from(buf, offset)
        if vers != METADATA_VERSION or event_len < METADATA.size:
            log(f"file watcher: unexpected event format (version {vers})")
            break
        out.append((mask, fd, pid))
        offset += event_len
    return out


WATCHER = Watcher()
