"""The change guard: nothing in the shared folder loses its content before Paddock has kept it.

virtiofsd runs under one more seccomp filter (loaded by ``paddock.vm.guardjail`` before
bubblewrap, so it holds for the jail and the daemon), whose action for every call that can
destroy or alter an existing file — an open for writing or truncating, ``truncate``, ``unlink``,
``rename`` (both names), ``link``, ``chmod``/``chown``/``utimensat`` and the extended-attribute
calls — is ``SECCOMP_RET_USER_NOTIF``. The listener is held here: for each such call a worker
reads the call's path from the daemon's memory, finds the file it names (through
``/proc/<pid>/fd`` and ``/proc/<pid>/root``, never writing anything), checks the call is still
waiting (``SECCOMP_IOCTL_NOTIF_ID_VALID``), hands the file to the ``Keeper`` (the undo store,
which copies or links the file's current version if a restore point needs it), then lets the
call go on (``SECCOMP_USER_NOTIF_FLAG_CONTINUE``). Everything else — bubblewrap's own set-up,
files not in any point — goes on at once.

Read opens too, where the session watches reads (``ReadWatcher``, #32): the filter then also
notifies every ``open``/``openat`` that neither writes nor is an ``O_PATH`` or directory open
(the daemons open a file so only when the guest opens it to read), and the guard hands the file
to the watcher before the call goes on. The guest cannot hide such a read: the daemon makes the
call whatever name, link or descriptor the guest used. A read open whose name cannot be read or
whose file cannot be looked at goes on only as ``unseen`` (the session is tainted), or, when
there is no such file, is answered with the kernel's own error. Read opens are answered on the
listener's thread (a quick look: no hand-off to a worker), with the kernel's synchronous wake-up.

If Paddock dies, the listener closes with it and every guarded call fails (``ENOSYS``): the
folder cannot change without its earlier version being kept (fail closed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import functools
import logging
import os
import select
import signal
import socket
import stat
import struct
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import pyseccomp

from paddock.vm.sharing import compiled
from paddock.vm.tracee import AT_FDCWD, read_bytes, read_string, signed, target, tree

log = logging.getLogger(__name__)

WRITE, REMOVE, META = "write", "remove", "meta"  # what the call is about to do to the file
# An open with none of these bits only reads a file's content: notified where reads are watched.
NOT_A_READ = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_PATH | os.O_DIRECTORY
AT_EMPTY_PATH = 0x1000
WRITE_FLAGS = (os.O_WRONLY, os.O_RDWR, os.O_TRUNC)
# The listener is read and answered by hand (ioctl): pyseccomp answers only through a filter it
# loaded in this same process, while this one arrives from the launcher (SCM_RIGHTS), and it has
# no SECCOMP_IOCTL_NOTIF_ID_VALID. The filter itself is built with pyseccomp (guard_filter).
NOTIF = struct.Struct("=QII iIQ6Q")  # struct seccomp_notif
RESP = struct.Struct("=QqiI")  # struct seccomp_notif_resp
IOCTL_RECV = 0xC0000000 | (NOTIF.size << 16) | (0x21 << 8) | 0
IOCTL_SEND = 0xC0000000 | (RESP.size << 16) | (0x21 << 8) | 1
IOCTL_ID_VALID = 0x40000000 | (8 << 16) | (0x21 << 8) | 2
IOCTL_SET_FLAGS = 0x40000000 | (8 << 16) | (0x21 << 8) | 4  # Linux 6.6
FLAG_CONTINUE = 1
# The daemon and the guard are woken as one hand-off (the caller waits on this CPU while the
# guard answers) rather than through the scheduler's queues (#32).
FD_SYNC_WAKE_UP = 1
# A read open whose file cannot be looked at is refused with the kernel's own answer when there
# is no file to read (the daemon would get the same); any other failure taints (``unseen``).
NO_FILE = (errno.ENOENT, errno.ENOTDIR)
WORKERS = 4  # the daemon's threads can wait on several calls at once


def _t(d: int | None, p: int | None, follow: bool, kind: str) -> tuple[int | None, int | None, bool, str]:
    return (d, p, follow, kind)


# name → its file arguments: (dirfd argument or None for AT_FDCWD, path argument or None for
# "the descriptor itself", follows the last name, kind)
CALLS: dict[str, list[tuple[int | None, int | None, bool, str]]] = {
    "openat2": [],  # looked at by its flags (below)
    "open": [_t(None, 0, True, WRITE)],
    "openat": [_t(0, 1, True, WRITE)],
    "creat": [_t(None, 0, True, WRITE)],
    "truncate": [_t(None, 0, True, WRITE)],
    "unlink": [_t(None, 0, False, REMOVE)],
    "unlinkat": [_t(0, 1, False, REMOVE)],
    "rename": [_t(None, 0, False, REMOVE), _t(None, 1, False, REMOVE)],
    "renameat": [_t(0, 1, False, REMOVE), _t(2, 3, False, REMOVE)],
    "renameat2": [_t(0, 1, False, REMOVE), _t(2, 3, False, REMOVE)],
    "link": [_t(None, 0, False, META)],
    "linkat": [_t(0, 1, False, META)],
    "chmod": [_t(None, 0, True, META)],
    "fchmod": [_t(0, None, True, META)],
    "fchmodat": [_t(0, 1, True, META)],
    "fchmodat2": [_t(0, 1, True, META)],
    "chown": [_t(None, 0, True, META)],
    "lchown": [_t(None, 0, False, META)],
    "fchown": [_t(0, None, True, META)],
    "fchownat": [_t(0, 1, True, META)],
    "utime": [_t(None, 0, True, META)],
    "utimes": [_t(None, 0, True, META)],
    "futimesat": [_t(0, 1, True, META)],
    "utimensat": [_t(0, 1, True, META)],
    "setxattr": [_t(None, 0, True, META)],
    "lsetxattr": [_t(None, 0, False, META)],
    "fsetxattr": [_t(0, None, True, META)],
    "removexattr": [_t(None, 0, True, META)],
    "lremovexattr": [_t(None, 0, False, META)],
    "fremovexattr": [_t(0, None, True, META)],
}
OPEN_FLAGS_ARG = {"open": 1, "openat": 2}
EMPTY_PATH_ARG = {"linkat": 4, "fchownat": 4, "utimensat": 3}  # the flags argument
AT_SYMLINK_NOFOLLOW, AT_SYMLINK_FOLLOW = 0x100, 0x400
# Calls whose flags say whether the last name is followed: (flags argument, bit, follows when set).
# Both daemons link by ``linkat(proc_self_fd, "<fd number>", …, AT_SYMLINK_FOLLOW)``: not
# following there would find /proc's magic link instead of the file.
FOLLOW_FLAG = {
    "linkat": (4, AT_SYMLINK_FOLLOW, True),
    "utimensat": (3, AT_SYMLINK_NOFOLLOW, False),
    "fchownat": (4, AT_SYMLINK_NOFOLLOW, False),
    "fchmodat2": (3, AT_SYMLINK_NOFOLLOW, False),
}
# ``openat2`` keeps its flags in a struct the filter cannot read: every call is notified, one
# that reads goes on (bubblewrap opens its mount sources so), one that may write is refused with
# ENOSYS (virtiofsd then opens with ``openat``, as it does when the kernel lacks openat2).
OPENAT2_WRITE = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_CREAT
# Refused outright (the daemons do without them): ``io_uring_setup`` would open and write with
# no system call at all; ``open_by_handle_at`` names no path (unprivileged it fails anyway).
REFUSED = {"io_uring_setup": errno.ENOSYS}


class Refused(Exception):
    """The call is answered with this error instead of going on."""

    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.err = err


def target_of(pid: int, dirfd: int, path: str | None, follow: bool) -> int | None:
    """The file a guarded call names (None: no such file, a file about to be made). Any other
    reason it cannot be opened refuses the call: a file the guard cannot keep first is not changed."""
    try:
        return target(pid, dirfd, path, follow)
    except OSError as exc:
        if exc.errno in NO_FILE:
            return None
        raise Refused(exc.errno or errno.EIO) from exc


class GuardError(OSError):
    """The guard could not be set up here (the caller falls back to copying at each point)."""


class ReadWatcher(Protocol):
    """Told of every file the guarded daemon opens to read (the session's sensitive-read watch)."""

    def opened(self, fd: int, st: os.stat_result) -> None:
        """The file on ``fd`` (an ``O_PATH`` descriptor) is being opened to read; must not raise."""

    def named(self, fd: int, st: os.stat_result) -> None:
        """A guarded call (write, rename, link, …) is about to act on the file or folder on ``fd``."""

    def unseen(self, why: str) -> None:
        """A read open goes on whose file the guard could not look at (fail closed: the session
        counts as having read a sensitive file); must not raise."""


class Keeper(Protocol):
    """What the guard asks before a call may change a file (the undo store answers)."""

    def before_change(self, kind: str, fd: int, st: os.stat_result) -> None:
        """Keep the file open on ``fd`` (an ``O_PATH`` descriptor) if a point needs it; must not raise."""


class _NoKeeper:
    """Keeps nothing (a daemon guarded only to see its read opens)."""

    def before_change(self, kind: str, fd: int, st: os.stat_result) -> None:
        pass


NO_KEEPER: Keeper = _NoKeeper()


@functools.lru_cache(maxsize=1)
def _numbers() -> dict[int, str]:
    out: dict[int, str] = {}
    for name in CALLS:
        with contextlib.suppress(ValueError, RuntimeError, OSError):
            nr = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
            if nr >= 0:
                out[nr] = name
    return out


@functools.lru_cache(maxsize=2)
def guard_filter(reads: bool = False) -> bytes:
    """The compiled filter (classic BPF): notify on the calls above (and read opens, with
    ``reads``), allow everything else."""
    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name, err in REFUSED.items():
        flt.add_rule(pyseccomp.ERRNO(err), name)
    for bit in WRITE_FLAGS:
        flt.add_rule(pyseccomp.ERRNO(errno.EPERM), "open_by_handle_at", pyseccomp.Arg(2, pyseccomp.MASKED_EQ, bit, bit))
    for name in _numbers().values():
        if name in OPEN_FLAGS_ARG:
            for bit in WRITE_FLAGS:
                flt.add_rule(pyseccomp.NOTIFY, name, pyseccomp.Arg(OPEN_FLAGS_ARG[name], pyseccomp.MASKED_EQ, bit, bit))
            if reads:
                flt.add_rule(
                    pyseccomp.NOTIFY, name, pyseccomp.Arg(OPEN_FLAGS_ARG[name], pyseccomp.MASKED_EQ, NOT_A_READ, 0)
                )
        else:
            flt.add_rule(pyseccomp.NOTIFY, name)
    return compiled(flt, "paddock-guard")


class Guard:
    """The supervisor of one guarded virtiofsd: a thread reading the listener, workers answering."""

    def __init__(self, listener: int, keeper: Keeper, root_pid: int, reads: ReadWatcher | None = None) -> None:
        self.listener = listener
        self.keeper = keeper
        self.reads = reads
        self.root_pid = root_pid  # bubblewrap (the launcher exec'd it): the daemon is below it
        self.notified = 0
        self.kept_calls = 0
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="paddock-guard")
        self._thread = threading.Thread(target=self._run, name="paddock-guard", daemon=True)
        with contextlib.suppress(OSError):  # older kernels: the scheduler's hand-off
            fcntl.ioctl(listener, IOCTL_SET_FLAGS, bytearray(struct.pack("=Q", FD_SYNC_WAKE_UP)), True)
        self._thread.start()

    @property
    def active(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        """Stop answering and close the listener: calls still guarded fail from now on."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True)
        with contextlib.suppress(OSError):
            os.close(self.listener)

    def _run(self) -> None:
        poll = select.poll()
        poll.register(self.listener, select.POLLIN)
        while not self._stop.is_set():
            events = poll.poll(200)
            if not events:
                continue
            if any(ev & select.POLLHUP for _fd, ev in events):
                return  # no process is under the filter any more
            if any(ev & (select.POLLERR | select.POLLNVAL) for _fd, ev in events):
                return self._lost("its listener was closed")
            buf = bytearray(NOTIF.size)
            try:
                fcntl.ioctl(self.listener, IOCTL_RECV, buf, True)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EINTR):  # the caller went away first
                    continue
                return self._lost(str(exc))
            self.notified += 1
            if self.reads is not None and self._only_reads(buf):
                self._answer(bytes(buf))  # a quick look: answered here, no hand-off to a worker
            else:
                self._pool.submit(self._answer, bytes(buf))

    @staticmethod
    def _only_reads(buf: bytearray) -> bool:
        """An ``open``/``openat`` that only reads (what the read watch answers)."""
        _id, _pid, _flags, nr, _arch, _ip, *args = NOTIF.unpack(buf)
        name = _numbers().get(nr)
        return name in OPEN_FLAGS_ARG and not args[OPEN_FLAGS_ARG[name]] & NOT_A_READ

    def _lost(self, why: str) -> None:
        """The guard cannot answer any more: stop the daemon at once. (A guarded call with no one
        to answer fails with ENOSYS, which a FUSE client takes for "open is not implemented" and
        then carries on without opens: the daemon must not outlive its guard.)"""
        if self._stop.is_set():
            return
        log.warning("the change guard stopped (%s): stopping the folder-sharing daemon", why)
        try:
            os.killpg(self.root_pid, signal.SIGKILL)  # bubblewrap leads its own session
        except OSError:
            with contextlib.suppress(OSError):
                os.kill(self.root_pid, signal.SIGKILL)

    def _answer(self, raw: bytes) -> None:
        notif_id, pid, _flags, nr, _arch, _ip, *args = NOTIF.unpack(raw)
        resp = RESP.pack(notif_id, 0, 0, FLAG_CONTINUE)
        try:
            self._handle(pid, nr, args, notif_id)
        except Refused as exc:
            resp = RESP.pack(notif_id, 0, -exc.err, 0)
        except Exception:  # a bug here: refuse the call rather than let it change an unkept file
            log.exception("the change guard could not look at a call; it is refused")
            resp = RESP.pack(notif_id, 0, -errno.EIO, 0)
        with contextlib.suppress(OSError):  # ENOENT: the caller was interrupted or killed
            fcntl.ioctl(self.listener, IOCTL_SEND, bytearray(resp), True)

    def _valid(self, notif_id: int) -> bool:
        try:
            fcntl.ioctl(self.listener, IOCTL_ID_VALID, bytearray(struct.pack("=Q", notif_id)), True)
        except OSError:
            return False
        return True

    def _handle(self, pid: int, nr: int, args: list[int], notif_id: int) -> None:
        name = _numbers().get(nr)
        if name is None:
            return
        if self._opening(name, pid, args, notif_id):
            return
        for dirarg, patharg, follow, kind in CALLS[name]:
            dirfd = AT_FDCWD if dirarg is None else signed(args[dirarg])
            path = None if patharg is None else read_string(pid, args[patharg])
            if patharg is not None and path is None and name != "utimensat":
                # ``utimensat(fd, NULL, …)`` names the descriptor itself; any other name the guard
                # cannot read would change a file it cannot keep first: refused (fail closed)
                if not self._valid(notif_id):
                    return
                raise Refused(errno.EIO)
            if path == "" and name in EMPTY_PATH_ARG and not args[EMPTY_PATH_ARG[name]] & AT_EMPTY_PATH:
                continue
            if name in FOLLOW_FLAG:
                flagarg, bit, when_set = FOLLOW_FLAG[name]
                follow = when_set == bool(args[flagarg] & bit)
            if not self._valid(notif_id):  # what we read belonged to a call that is gone
                return
            self._keep(name, kind, target_of(pid, dirfd, path, follow))

    def _keep(self, name: str, kind: str, fd: int | None) -> None:
        """The file a call is about to change, kept first (``fd`` None: nothing there to keep)."""
        if fd is None:
            return
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                self.kept_calls += 1
                if self.reads is not None:  # a sensitive file renamed or linked stays sensitive
                    self.reads.named(fd, st)
                self.keeper.before_change(kind, fd, st)
            elif stat.S_ISDIR(st.st_mode) and self.reads is not None and name.startswith("rename"):
                self.reads.named(fd, st)  # so do the files in a renamed folder
        finally:
            os.close(fd)

    def _opening(self, name: str, pid: int, args: list[int], notif_id: int) -> bool:
        """An ``openat2``, or an open that only reads: answered here (True), else False."""
        if name == "openat2":
            flags = read_bytes(pid, args[2], 8)  # struct open_how starts with its u64 flags
            if flags is None or int.from_bytes(flags, sys.byteorder) & OPENAT2_WRITE:
                raise Refused(errno.ENOSYS)
            how = int.from_bytes(flags, sys.byteorder)
            if not how & NOT_A_READ:
                self._read(pid, signed(args[0]), read_string(pid, args[1]), how, notif_id)
            return True
        if name in OPEN_FLAGS_ARG and not args[OPEN_FLAGS_ARG[name]] & NOT_A_READ:
            path = read_string(pid, args[OPEN_FLAGS_ARG[name] - 1])
            dirfd = AT_FDCWD if name == "open" else signed(args[0])
            self._read(pid, dirfd, path, args[OPEN_FLAGS_ARG[name]], notif_id)
            return True
        return False

    def _read(self, pid: int, dirfd: int, path: str | None, flags: int, notif_id: int) -> None:
        """A read open: the watcher is told of the file before the call goes on. Fail closed: a
        file the guard cannot look at is told as ``unseen`` (unless there is no file to read)."""
        if self.reads is None or not self._valid(notif_id):
            return  # not watched, or the call is gone (it will not open anything)
        if path is None:
            return self.reads.unseen("the name it opens could not be read from the daemon's memory")
        try:
            fd = target(pid, dirfd, path, True)
        except OSError as exc:
            if exc.errno in NO_FILE and (not flags & os.O_CREAT or flags & os.O_EXCL):
                if not flags & os.O_CREAT:
                    raise Refused(exc.errno) from None  # what the kernel would answer: nothing is read
                return None  # O_EXCL: the call makes a new, empty file or fails
            return self.reads.unseen(f"the file it opens could not be looked at ({exc.strerror})")
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                self.reads.opened(fd, st)
        finally:
            os.close(fd)

    def writers(self) -> set[tuple[int, int]]:
        """(device, inode) of every file the guarded processes hold open for writing now (a
        command still running from an earlier turn): a point must copy those at once."""
        out: set[tuple[int, int]] = set()
        for pid in tree(self.root_pid):
            with contextlib.suppress(OSError), os.scandir(f"/proc/{pid}/fdinfo") as it:
                for e in it:
                    with contextlib.suppress(OSError, ValueError):
                        with open(e.path) as f:
                            flags = next(int(line.split()[1], 8) for line in f if line.startswith("flags:"))
                        if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                            st = os.stat(f"/proc/{pid}/fd/{e.name}")
                            if stat.S_ISREG(st.st_mode):
                                out.add((st.st_dev, st.st_ino))
        return out


Spawn = Callable[[str, list[str], tuple[int, ...]], Awaitable[asyncio.subprocess.Process]]
LAUNCH_TIMEOUT_S = 10.0


async def launch_guarded(
    spawn: Spawn,
    name: str,
    argv: list[str],
    pass_fds: tuple[int, ...],
    keeper: Keeper,
    *,
    reads: ReadWatcher | None = None,
) -> tuple[asyncio.subprocess.Process, Guard] | str:
    """Start ``argv`` (bubblewrap and the daemon) through the launcher, which loads the guard's
    filter and sends back its listener; the process and its guard, or why not (nothing started)."""
    try:
        bpf = guard_filter(reads is not None)
    except (OSError, RuntimeError, ValueError) as exc:
        return f"the guard's filter could not be made: {exc}"
    ffd = os.memfd_create("paddock-guard", 0)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.write(ffd, bpf)
        os.lseek(ffd, 0, os.SEEK_SET)
        launcher = [sys.executable, "-I", str(Path(__file__).with_name("guardjail.py")), str(ffd), str(theirs.fileno())]
        proc = await spawn(name, [*launcher, "--", *argv], (*pass_fds, ffd, theirs.fileno()))
        theirs.close()
        ours.settimeout(LAUNCH_TIMEOUT_S)
        answering = asyncio.ensure_future(asyncio.to_thread(_answer, ours))
        try:
            msg, fds = await asyncio.shield(answering)
        except asyncio.CancelledError:  # the launcher and what it started stop; its answer is read and closed
            await _stopped(proc)
            await asyncio.wait({answering})
            for fd in answering.result()[1]:
                os.close(fd)
            raise
        if msg != b"ok" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            await _stopped(proc)
            return msg.decode(errors="replace").removeprefix("error: ") or "the launcher stopped"
        return proc, Guard(fds[0], keeper, proc.pid, reads)
    finally:
        os.close(ffd)
        ours.close()
        theirs.close()


def _answer(sock: socket.socket) -> tuple[bytes, list[int]]:
    """The launcher's answer: ``ok`` and the listener, or why not (blocking: run in a thread)."""
    try:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 256, 1)
    except OSError as exc:
        return f"the launcher did not answer: {exc}".encode(), []
    return msg, fds


async def _stopped(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()
