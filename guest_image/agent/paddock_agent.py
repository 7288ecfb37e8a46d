"""Paddock guest agent: the gRPC server inside the sandbox VM.

Runs as root in the guest (started by busybox init, respawned if it dies) and
serves paddock.guest.v1.GuestAgent on a unix socket that only root can open.
A bridge thread joins that socket to the virtio-serial port `paddock.agent`,
whose host end is a unix socket in a folder only the host user can open.

Commands run as the unprivileged `agent` user (uid 1000) in their own process
group, so a timeout or a cancelled call kills everything they started.
Every file operation is confined to /workspace.

This file runs under the guest's Python (Debian's python3) with the grpcio and
protobuf wheels the image build installed; it imports nothing from the host.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os

# Must be set before grpc is imported: the agent forks for every command.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
import queue
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, TypeVar

import grpc

from paddock.guest.v1 import agent_pb2 as pb
from paddock.guest.v1 import agent_pb2_grpc as pb_grpc

AGENT_VERSION = "0.1.0"
WORKSPACE = os.environ.get("PADDOCK_WORKSPACE", "/workspace")
AGENT_SOCKET = "/run/paddock/agent.sock"
PORT_NAME = "paddock.agent"
AGENT_HOME = "/home/agent"
SETPRIV = "/usr/bin/setpriv"
BUSYBOX = "/opt/paddock/bin/busybox"
CA_PATH = "/etc/ssl/certs/paddock-egress-ca.pem"
EGRESS_PORT = 3128
COMMANDS_CGROUP = "/sys/fs/cgroup/commands/cgroup.procs"
BOOT_KEY_METADATA = "paddock-boot-key"
READ_CAP = 16 * 1024 * 1024
LIST_CAP = 10_000
CHUNK = 32 * 1024


def _kernel_flag(flag: str) -> bool:
    try:
        with open("/proc/cmdline") as fh:
            return flag in fh.read().split()
    except OSError:
        return False


# Set by the host's fence tests only (VMConfig.guest_root): commands run as guest root, as an
# attacker who escalated inside the guest would. The host's fence must hold against that too.
EXEC_AS_ROOT = _kernel_flag("paddock.exec_as_root")


def log(msg: str) -> None:
    print(f"paddock-agent: {msg}", file=sys.stderr, flush=True)


def uptime() -> float:
    with open("/proc/uptime") as fh:
        return float(fh.read().split()[0])


# Shares the host may attach after a snapshot restore: tag -> (mount point, read-only).
SHARE_MOUNTS = {"workspace": ("/workspace", False), "profile": ("/home/agent/.claude", True)}
MOUNT_WAIT_S = 20.0


def mount_share(tag: str) -> str | None:
    """Mount a hot-plugged virtiofs share at its fixed place; wait for the device to appear.
    Returns None when mounted, else why not."""
    path, read_only = SHARE_MOUNTS[tag]
    options = "ro,nosuid,nodev" if read_only else "nosuid,nodev"
    deadline = time.monotonic() + MOUNT_WAIT_S
    last = ""
    while time.monotonic() < deadline:
        with open("/proc/mounts") as fh:
            if any(line.split()[:3] == [tag, path, "virtiofs"] for line in fh):
                return None
        proc = subprocess.run(
            [BUSYBOX, "mount", "-t", "virtiofs", "-o", options, tag, path],
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode == 0:
            log(f"mounted {tag} at {path} (guest uptime {uptime():.2f} s)")
            return None
        last = proc.stderr.strip()
        time.sleep(0.05)
    return f"the {tag} share did not appear within {MOUNT_WAIT_S:.0f} s ({last})"


RNDRESEEDCRNG = 0x5207  # _IO('R', 0x07)


def reseed_random(entropy: bytes) -> None:
    """Mix the host's bytes into the pool and reseed the kernel's CRNG at once. Every guest woken
    from one snapshot starts with the same CRNG state; a plain write to /dev/urandom only feeds the
    input pool, and the CRNG would keep producing the same bytes until its periodic reseed."""
    fd = os.open("/dev/urandom", os.O_WRONLY)
    try:
        os.write(fd, entropy)
        fcntl.ioctl(fd, RNDRESEEDCRNG)
    finally:
        os.close(fd)


def workspace_owner() -> tuple[int, int]:
    """Commands run as whoever owns the shared folder as the guest sees it (the host maps the
    person to uid 1000 here), so what they create belongs to the person on the host."""
    st = os.stat(WORKSPACE)
    return st.st_uid, st.st_gid


_LIBC = ctypes.CDLL(None, use_errno=True)
_SYS_SETFSUID = 122  # x86_64
_SYS_SETFSGID = 123


@contextlib.contextmanager
def as_owner() -> Iterator[None]:
    """Create files in the workspace as its owner, on this thread only (setfsuid is per thread).
    The host's folder-sharing helper maps only the owner's uid: a file created as guest root
    would be refused there, so the agent's own writes take the owner's identity."""
    uid, gid = workspace_owner()
    old_gid = _LIBC.syscall(_SYS_SETFSGID, gid)
    old_uid = _LIBC.syscall(_SYS_SETFSUID, uid)
    try:
        yield
    finally:
        _LIBC.syscall(_SYS_SETFSUID, old_uid)
        _LIBC.syscall(_SYS_SETFSGID, old_gid)


# --------------------------------------------------------------------------- paths


class PathError(Exception):
    """A path the caller gave that is not inside the workspace."""


def resolve(rel: str, *, must_exist: bool = False, allow_root: bool = True) -> str:
    """Map a workspace-relative path to an absolute guest path inside WORKSPACE.

    The parent chain is resolved with realpath, so a symlink anywhere on the
    way that leads outside the workspace is refused. The final component is
    not followed: callers open it with O_NOFOLLOW or lstat.
    """
    if "\x00" in rel:
        raise PathError("path contains a NUL byte")
    if os.path.isabs(rel):
        raise PathError(f"absolute paths are not allowed: {rel!r} (use a path relative to the workspace)")
    norm = os.path.normpath(rel) if rel else "."
    if norm == ".." or norm.startswith("../"):
        raise PathError(f"path leaves the workspace: {rel!r}")
    root = os.path.realpath(WORKSPACE)
    if norm == ".":
        if not allow_root:
            raise PathError("this operation needs a path inside the workspace, not the workspace itself")
        return root
    parent, name = os.path.split(norm)
    real_parent = os.path.realpath(os.path.join(root, parent))
    if real_parent != root and not real_parent.startswith(root + "/"):
        raise PathError(f"path leaves the workspace through a symbolic link: {rel!r}")
    full = os.path.join(real_parent, name)
    if must_exist and not os.path.lexists(full):
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", rel)
    return full


def resolve_follow(rel: str) -> str:
    """Like resolve, but follows a final symlink as long as it stays inside."""
    full = resolve(rel)
    real = os.path.realpath(full)
    root = os.path.realpath(WORKSPACE)
    if real != root and not real.startswith(root + "/"):
        raise PathError(f"path leaves the workspace through a symbolic link: {rel!r}")
    return real


def workspace_relative(full: str) -> str:
    root = os.path.realpath(WORKSPACE)
    return os.path.relpath(full, root)


def file_info(full: str, rel: str) -> pb.FileInfo:
    st = os.lstat(full)
    if stat.S_ISREG(st.st_mode):
        ftype = pb.FILE_TYPE_FILE
    elif stat.S_ISDIR(st.st_mode):
        ftype = pb.FILE_TYPE_DIRECTORY
    elif stat.S_ISLNK(st.st_mode):
        ftype = pb.FILE_TYPE_SYMLINK
    else:
        ftype = pb.FILE_TYPE_OTHER
    return pb.FileInfo(path=rel, type=ftype, size=st.st_size, mode=stat.S_IMODE(st.st_mode), mtime=st.st_mtime)


# --------------------------------------------------------------------------- events


class EventHub:
    """Fan-out of guest events to every open Events stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[pb.GuestEvent | None]] = []
        self._seq = 0

    def publish(self, **kind: Any) -> None:
        with self._lock:
            self._seq += 1
            event = pb.GuestEvent(time_unix=time.time(), seq=self._seq, **kind)
            for q in self._subscribers:
                q.put(event)

    def subscribe(self) -> queue.Queue[pb.GuestEvent | None]:
        q: queue.Queue[pb.GuestEvent | None] = queue.Queue()
        with self._lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[pb.GuestEvent | None]) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)
        q.put(None)


# --------------------------------------------------------------------------- service


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


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Agent, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except grpc.RpcError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            _abort_for(context, exc)

    wrapper.__name__ = fn.__name__
    return wrapper


class Agent(pb_grpc.GuestAgentServicer):
    def __init__(self, hub: EventHub, key_box: KeyBox) -> None:
        self.hub = hub
        self.key_box = key_box
        self.extra_env: dict[str, str] = {}
        self.egress_lock = threading.Lock()

    def Claim(self, request: pb.ClaimRequest, context: grpc.ServicerContext) -> pb.ClaimResponse:
        if len(request.boot_key) < 16:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "boot key too short")
        if not self.key_box.set_once(request.boot_key):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "this boot is already claimed")
        if request.unix_time_ns > 0:
            try:
                time.clock_settime(time.CLOCK_REALTIME, request.unix_time_ns / 1e9)
            except OSError as exc:
                log(f"could not set the clock: {exc}")
        if request.entropy:
            try:
                reseed_random(request.entropy[:4096])
            except OSError as exc:  # fail closed: no guest with a shared random state
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"could not reseed the random pool: {exc}")
        for tag in request.mount_tags:
            if tag not in SHARE_MOUNTS:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown share {tag!r}")
            problem = mount_share(tag)
            if problem:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, problem)
        return pb.ClaimResponse()

    def Health(self, request: pb.HealthRequest, context: grpc.ServicerContext) -> pb.HealthResponse:
        return pb.HealthResponse(ready=True)

    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        mounts = []
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 4 and parts[2] == "virtiofs":
                    mounts.append(pb.Mount(tag=parts[0], path=parts[1], read_only="ro" in parts[3].split(",")))
        return pb.InfoResponse(
            agent_version=AGENT_VERSION,
            kernel=os.uname().release,
            uptime_s=uptime(),
            mounts=mounts,
        )

    # ------------------------------------------------------------------ exec

    def Exec(self, request: pb.ExecRequest, context: grpc.ServicerContext) -> Iterator[pb.ExecEvent]:
        if not request.argv:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "argv is empty")
        try:
            cwd = resolve_follow(request.cwd)
        except Exception as exc:  # noqa: BLE001
            _abort_for(context, exc)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": AGENT_HOME,
            "USER": "agent",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",
        }
        env.update(self.extra_env)
        env.update(request.env)
        exec_id = uuid.uuid4().hex[:12]
        started = time.monotonic()
        uid, gid = workspace_owner()
        argv = list(request.argv)
        if "/" not in argv[0] and shutil.which(argv[0], path=env["PATH"]) is None:
            yield pb.ExecEvent(
                exit=pb.ExecExit(
                    reason=pb.EXIT_REASON_START_FAILED,
                    exit_code=127,
                    message=f"command not found: {argv[0]}",
                )
            )
            return
        if uid != 0 and not EXEC_AS_ROOT:
            # setpriv rather than Popen(user=...): that would stop subprocess
            # from using vfork, and forking this process is slow under TCG.
            argv = [SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]
        if os.path.exists(COMMANDS_CGROUP):
            # Join the commands' cgroup (pids, memory and cpu limits) before anything runs.
            argv = [BUSYBOX, "sh", "-c", f'echo $$ > {COMMANDS_CGROUP} && exec "$@"', "paddock-exec", *argv]
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE if request.stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            yield pb.ExecEvent(
                exit=pb.ExecExit(
                    reason=pb.EXIT_REASON_START_FAILED,
                    exit_code=127,
                    message=f"could not start {request.argv[0]!r}: {exc.strerror}",
                    duration_s=time.monotonic() - started,
                )
            )
            return

        def kill_group() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        context.add_callback(kill_group)  # the caller went away: kill everything
        self.hub.publish(
            process_started=pb.ProcessStarted(exec_id=exec_id, pid=proc.pid, argv=list(request.argv), cwd=request.cwd)
        )
        yield pb.ExecEvent(started=pb.ExecStarted(exec_id=exec_id, pid=proc.pid))

        if request.stdin:
            threading.Thread(target=_feed_stdin, args=(proc, request.stdin), daemon=True).start()

        out: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=64)
        readers = [
            threading.Thread(target=_pump, args=(proc.stdout, pb.OUTPUT_STREAM_STDOUT, out), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, pb.OUTPUT_STREAM_STDERR, out), daemon=True),
        ]
        for r in readers:
            r.start()
        deadline = started + request.timeout_s if request.timeout_s > 0 else None
        timed_out = False
        open_streams = 2
        while open_streams:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = out.get(timeout=timeout)
            except queue.Empty:
                timed_out = True
                kill_group()
                deadline = None
                continue
            if item is None:
                open_streams -= 1
                continue
            yield pb.ExecEvent(output=pb.ExecOutput(stream=item[0], data=item[1]))
        if deadline is not None:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group()
        code = proc.wait()
        # Whatever the command left behind in its group goes with it.
        kill_group()
        duration = time.monotonic() - started
        if timed_out:
            result = pb.ExecExit(
                reason=pb.EXIT_REASON_TIMED_OUT,
                signal=signal.SIGKILL,
                duration_s=duration,
                message=f"killed after {request.timeout_s:g} s",
            )
        elif code < 0:
            result = pb.ExecExit(reason=pb.EXIT_REASON_SIGNALED, signal=-code, duration_s=duration)
        else:
            result = pb.ExecExit(reason=pb.EXIT_REASON_EXITED, exit_code=code, duration_s=duration)
        self.hub.publish(process_exited=pb.ProcessExited(exec_id=exec_id, pid=proc.pid, exit=result))
        yield pb.ExecEvent(exit=result)

    # ------------------------------------------------------------------ files

    @guarded
    def ReadFile(self, request: pb.ReadFileRequest, context: grpc.ServicerContext) -> pb.ReadFileResponse:
        full = resolve_follow(request.path)
        cap = request.max_bytes if 0 < request.max_bytes <= READ_CAP else READ_CAP
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory", request.path)
            data = os.pread(fd, cap, max(0, request.offset))
        finally:
            os.close(fd)
        return pb.ReadFileResponse(data=data, size=st.st_size, eof=max(0, request.offset) + len(data) >= st.st_size)

    @guarded
    def WriteFile(self, request: pb.WriteFileRequest, context: grpc.ServicerContext) -> pb.WriteFileResponse:
        full = resolve(request.path, allow_root=False)
        parent = os.path.dirname(full)
        with as_owner():
            return self._write_file(request, full, parent)

    def _write_file(self, request: pb.WriteFileRequest, full: str, parent: str) -> pb.WriteFileResponse:
        if request.create_parents:
            _makedirs_as_agent(parent)
        # A symlink at the target is replaced by the rename, never written through.
        tmp = os.path.join(parent, f".paddock-tmp-{uuid.uuid4().hex}")
        mode = request.mode & 0o777 or 0o644  # never setuid, setgid or sticky
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            view = memoryview(request.data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fchmod(fd, mode)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.rename(tmp, full)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        self.hub.publish(
            file_changed=pb.FileChanged(
                path=workspace_relative(full), change=pb.FileChanged.CHANGE_WRITTEN, size=len(request.data)
            )
        )
        return pb.WriteFileResponse(size=len(request.data))

    @guarded
    def ListDir(self, request: pb.ListDirRequest, context: grpc.ServicerContext) -> pb.ListDirResponse:
        top = resolve_follow(request.path)
        cap = request.max_entries if 0 < request.max_entries <= LIST_CAP else LIST_CAP
        if not os.path.isdir(top):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", request.path)
        entries: list[pb.FileInfo] = []
        truncated = False
        stack = [top]
        while stack and not truncated:
            current = stack.pop()
            with os.scandir(current) as it:
                for entry in sorted(it, key=lambda e: e.name):
                    if len(entries) >= cap:
                        truncated = True
                        break
                    rel = workspace_relative(entry.path)
                    entries.append(file_info(entry.path, rel))
                    if request.recursive and entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        return pb.ListDirResponse(entries=entries, truncated=truncated)

    @guarded
    def Stat(self, request: pb.StatRequest, context: grpc.ServicerContext) -> pb.StatResponse:
        full = resolve(request.path, must_exist=True)
        return pb.StatResponse(
            info=file_info(full, workspace_relative(full) if full != os.path.realpath(WORKSPACE) else ".")
        )

    @guarded
    def Remove(self, request: pb.RemoveRequest, context: grpc.ServicerContext) -> pb.RemoveResponse:
        full = resolve(request.path, must_exist=True, allow_root=False)
        if os.path.isdir(full) and not os.path.islink(full):
            if request.recursive:
                shutil.rmtree(full)
            else:
                os.rmdir(full)
        else:
            os.unlink(full)
        self.hub.publish(
            file_changed=pb.FileChanged(path=workspace_relative(full), change=pb.FileChanged.CHANGE_REMOVED)
        )
        return pb.RemoveResponse()

    @guarded
    def Configure(self, request: pb.ConfigureRequest, context: grpc.ServicerContext) -> pb.ConfigureResponse:
        if request.ca_pem:
            os.makedirs(os.path.dirname(CA_PATH), exist_ok=True)
            with open(CA_PATH + ".tmp", "wb") as fh:
                fh.write(request.ca_pem)
            os.chmod(CA_PATH + ".tmp", 0o644)
            os.rename(CA_PATH + ".tmp", CA_PATH)
        self.extra_env = dict(request.env)
        return pb.ConfigureResponse()

    def Egress(
        self, request_iterator: Iterator[pb.EgressFrame], context: grpc.ServicerContext
    ) -> Iterator[pb.EgressFrame]:
        """Carry guest connections to 127.0.0.1:3128 to the host, one frame at a time."""
        if not self.egress_lock.acquire(blocking=False):
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "an egress tunnel is already open")
        out: queue.Queue[pb.EgressFrame | None] = queue.Queue(maxsize=256)
        conns: dict[int, socket.socket] = {}
        lock = threading.Lock()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", EGRESS_PORT))
        listener.listen(64)
        stop = threading.Event()

        def close(conn_id: int) -> None:
            with lock:
                sock = conns.pop(conn_id, None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

        def read_from(conn_id: int, sock: socket.socket) -> None:
            try:
                while True:
                    data = sock.recv(CHUNK)
                    if not data:
                        break
                    out.put(pb.EgressFrame(conn=conn_id, kind=pb.EgressFrame.KIND_DATA, data=data))
            except OSError:
                pass
            out.put(pb.EgressFrame(conn=conn_id, kind=pb.EgressFrame.KIND_CLOSE))

        def accept_loop() -> None:
            next_id = 1
            while not stop.is_set():
                try:
                    sock, _ = listener.accept()
                except OSError:
                    return
                conn_id, next_id = next_id, next_id + 1
                with lock:
                    conns[conn_id] = sock
                out.put(pb.EgressFrame(conn=conn_id, kind=pb.EgressFrame.KIND_OPEN))
                threading.Thread(target=read_from, args=(conn_id, sock), daemon=True).start()

        def from_host() -> None:
            try:
                for frame in request_iterator:
                    if frame.kind == pb.EgressFrame.KIND_DATA:
                        with lock:
                            sock = conns.get(frame.conn)
                        if sock is not None:
                            try:
                                sock.sendall(frame.data)
                            except OSError:
                                close(frame.conn)
                    elif frame.kind == pb.EgressFrame.KIND_CLOSE:
                        close(frame.conn)
            except grpc.RpcError:
                pass
            finally:
                out.put(None)

        def shutdown() -> None:
            stop.set()
            listener.close()
            for conn_id in list(conns):
                close(conn_id)
            out.put(None)

        context.add_callback(shutdown)
        threading.Thread(target=accept_loop, daemon=True).start()
        threading.Thread(target=from_host, daemon=True).start()
        try:
            yield from _drain(out, context)
        finally:
            shutdown()
            self.egress_lock.release()

    def Events(self, request: pb.EventsRequest, context: grpc.ServicerContext) -> Iterator[pb.GuestEvent]:
        q = self.hub.subscribe()
        context.add_callback(lambda: self.hub.unsubscribe(q))
        yield from _drain(q, context)


T = TypeVar("T")


def _drain(q: queue.Queue[T | None], context: grpc.ServicerContext) -> Iterator[T]:
    """Yield what a queue receives until None arrives or the caller goes away."""
    while context.is_active():
        try:
            item = q.get(timeout=1.0)
        except queue.Empty:
            continue
        if item is None:
            return
        yield item


def _makedirs_as_agent(path: str) -> None:
    root = os.path.realpath(WORKSPACE)
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        os.mkdir(d, 0o755)
        real = os.path.realpath(d)
        if not (real == root or real.startswith(root + "/")):
            raise PathError("path leaves the workspace")


def _feed_stdin(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass


def _pump(stream: Any, kind: int, out: queue.Queue[tuple[int, bytes] | None]) -> None:
    try:
        while True:
            data = stream.read1(CHUNK)
            if not data:
                break
            out.put((kind, data))
    finally:
        out.put(None)


# --------------------------------------------------------------------------- auth


class KeyBox:
    def __init__(self) -> None:
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def set_once(self, key: bytes) -> bool:
        with self._lock:
            if self._key is not None:
                return False
            self._key = bytes(key)
            return True

    def check(self, presented: str | None) -> bool:
        import hmac

        key = self._key
        if key is None or presented is None:
            return False
        return hmac.compare_digest(key.hex().encode(), presented.encode())

    @property
    def claimed(self) -> bool:
        return self._key is not None


class BootKeyInterceptor(grpc.ServerInterceptor):
    """Every call but Claim and Health must carry this boot's key."""

    OPEN = frozenset({"/paddock.guest.v1.GuestAgent/Claim", "/paddock.guest.v1.GuestAgent/Health"})

    def __init__(self, key_box: KeyBox) -> None:
        self.key_box = key_box

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong boot key")

        self._deny_unary = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.unary_stream_rpc_method_handler(deny)
        self._deny_bidi = grpc.stream_stream_rpc_method_handler(deny)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        method = handler_call_details.method
        if method in self.OPEN:
            return continuation(handler_call_details)
        presented = dict(handler_call_details.invocation_metadata or ()).get(BOOT_KEY_METADATA)
        if self.key_box.check(presented):
            return continuation(handler_call_details)
        if method.endswith(("/Exec", "/Events")):
            return self._deny_stream
        if method.endswith("/Egress"):
            return self._deny_bidi
        return self._deny_unary


# --------------------------------------------------------------------------- bridge


def find_port(name: str) -> str | None:
    base = "/sys/class/virtio-ports"
    try:
        for entry in os.listdir(base):
            try:
                with open(os.path.join(base, entry, "name")) as fh:
                    if fh.read().strip() == name:
                        return f"/dev/{entry}"
            except OSError:
                continue
    except FileNotFoundError:
        return None
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        view = view[n:]


def bridge(port_path: str, sock_path: str) -> None:
    """Join the virtio-serial port to the agent's unix socket.

    The port reads EOF while no host client is connected; each host
    connection gets a fresh connection to the gRPC server, so a host that
    goes away cancels its calls.
    """
    fd = os.open(port_path, os.O_RDWR | os.O_CLOEXEC)
    conn: socket.socket | None = None
    poller = select.poll()
    poller.register(fd, select.POLLIN)

    def pump_to_port(s: socket.socket) -> None:
        try:
            while True:
                data = s.recv(CHUNK)
                if not data:
                    break
                _write_all(fd, data)
        except OSError:
            pass

    while True:
        events = poller.poll(1000)
        if not events:
            continue
        try:
            data = os.read(fd, CHUNK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                continue
            data = b""
        if not data:
            # The host end is closed. Drop our side and wait for a new host.
            if conn is not None:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
                conn = None
            time.sleep(0.02)
            continue
        if conn is None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(sock_path)
            threading.Thread(target=pump_to_port, args=(conn,), daemon=True).start()
        try:
            conn.sendall(data)
        except OSError:
            conn.close()
            conn = None


# --------------------------------------------------------------------------- main


def serve() -> None:
    os.makedirs(os.path.dirname(AGENT_SOCKET), mode=0o700, exist_ok=True)
    if os.path.exists(AGENT_SOCKET):
        os.unlink(AGENT_SOCKET)
    hub = EventHub()
    key_box = KeyBox()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32),
        interceptors=[BootKeyInterceptor(key_box)],
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ],
    )
    pb_grpc.add_GuestAgentServicer_to_server(Agent(hub, key_box), server)
    server.add_insecure_port(f"unix:{AGENT_SOCKET}")
    server.start()
    os.chmod(AGENT_SOCKET, 0o600)
    port = None
    for _ in range(200):
        port = find_port(PORT_NAME)
        if port:
            break
        time.sleep(0.05)
    if port is None:
        log(f"no virtio-serial port named {PORT_NAME}; serving on {AGENT_SOCKET} only")
    else:
        threading.Thread(target=bridge, args=(port, AGENT_SOCKET), daemon=True).start()
        log(f"ready on {port} (guest uptime {uptime():.2f} s)")
    server.wait_for_termination()


if __name__ == "__main__":
    serve()
