"""Exec: run one command as the workspace's owner, in its own process group, and stream it."""

from __future__ import annotations

import functools
import os
import re
import select
import selectors
import shutil
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping

import grpc

from paddock.guest.v1 import agent_pb2 as pb
from paddock_guest import clock
from paddock_guest.config import AGENT_HOME, CHUNK, COMMANDS_CGROUP, EXEC_AS_ROOT, RUNAS
from paddock_guest.events import RUNS, EventHub
from paddock_guest.jail import workspace_owner
from paddock_guest.watch import WATCHER

COMMAND_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the host's id for a command (ExecRequest.command_id)


def run_command(
    request: pb.ExecRequest,
    context: grpc.ServicerContext,
    *,
    cwd: str,
    hub: EventHub,
    extra_env: Mapping[str, str],
) -> Iterator[pb.ExecEvent]:
    """The body of Exec once argv and cwd are known good: start, stream, report how it ended."""
    clock.catch_up()  # the guest may have been paused since the last command
    env = _command_env(extra_env, request.env)
    exec_id = request.command_id if COMMAND_ID.fullmatch(request.command_id) else os.urandom(6).hex()
    started = time.monotonic()
    uid, gid = workspace_owner()
    argv = list(request.argv)
    if "/" not in argv[0] and shutil.which(argv[0], path=env["PATH"]) is None:
        yield _start_failed(f"command not found: {argv[0]}")
        return
    try:
        proc = _Spawned(_wrap_argv(argv, uid, gid, cwd), env, with_stdin=bool(request.stdin))
    except OSError as exc:
        yield _start_failed(
            f"could not start {request.argv[0]!r}: {exc.strerror}", duration_s=time.monotonic() - started
        )
        return
    try:
        yield from _run_started(request, context, proc, hub=hub, exec_id=exec_id, started=started)
    finally:
        proc.reap()  # however the call ended (a host that went away closes this generator)


def _run_started(
    request: pb.ExecRequest,
    context: grpc.ServicerContext,
    proc: _Spawned,
    *,
    hub: EventHub,
    exec_id: str,
    started: float,
) -> Iterator[pb.ExecEvent]:
    kill_group = functools.partial(_kill_group, proc.pid)
    context.add_callback(kill_group)  # the caller went away: kill everything
    RUNS.started(proc.pid, exec_id)
    hub.publish(
        process_started=pb.ProcessStarted(exec_id=exec_id, pid=proc.pid, argv=list(request.argv), cwd=request.cwd)
    )
    yield pb.ExecEvent(started=pb.ExecStarted(exec_id=exec_id, pid=proc.pid))

    if proc.stdin >= 0:
        stdin, proc.stdin = proc.stdin, -1  # the feeding thread's now, which closes it
        threading.Thread(target=_feed_stdin, args=(stdin, request.stdin), daemon=True).start()
    deadline = started + request.timeout_s if request.timeout_s > 0 else None
    timed_out = yield from _stream_output(proc, deadline, kill_group)
    code = proc.wait()
    assert code is not None  # no timeout: it waited for the end
    # Whatever the command left behind in its group goes with it.
    kill_group()
    result = _exit_result(code, timed_out=timed_out, duration=time.monotonic() - started, timeout_s=request.timeout_s)
    WATCHER.flush(hub)  # what the command finished writing goes out before its exit: one order
    result.seq = hub.publish(process_exited=pb.ProcessExited(exec_id=exec_id, pid=proc.pid, exit=result))
    yield pb.ExecEvent(exit=result)


def _command_env(extra_env: Mapping[str, str], request_env: Mapping[str, str]) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": AGENT_HOME,
        "USER": "agent",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
    }
    env.update(extra_env)
    env.update(request_env)
    return env


def _wrap_argv(argv: list[str], uid: int, gid: int, cwd: str) -> list[str]:
    """One exec of the static helper: join the commands' cgroup (pids, memory and cpu limits)
    before anything runs, enter ``cwd``, close every inherited descriptor above 2, become the
    folder's owner, run the command. (Not Popen(user=...): that stops subprocess from using
    vfork, and forking this process is slow under TCG.)"""
    if EXEC_AS_ROOT:
        uid = gid = 0
    cgroup = COMMANDS_CGROUP if os.path.exists(COMMANDS_CGROUP) else "-"
    return [RUNAS, cgroup, str(uid), str(gid), cwd, "--", *argv]


class _Spawned:
    """One command started by ``posix_spawn`` (a vfork and one exec, in C): the run-as helper in
    a new session, its stdin /dev/null or a pipe, its stdout and stderr pipes. It replaced
    ``subprocess.Popen``, whose Python-level work (file objects, its error pipe, its bookkeeping)
    cost several milliseconds a command under emulation (#33). Every descriptor the agent opens
    is close-on-exec (PEP 446); the helper also closes any that is not before the command runs."""

    def __init__(self, argv: list[str], env: Mapping[str, str], *, with_stdin: bool) -> None:
        opened: list[int] = []
        try:
            if with_stdin:
                stdin_r, self.stdin = os.pipe()
                opened += [stdin_r, self.stdin]
            else:
                stdin_r, self.stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), -1
                opened.append(stdin_r)
            self.stdout, stdout_w = os.pipe()
            opened += [self.stdout, stdout_w]
            self.stderr, stderr_w = os.pipe()
            opened += [self.stderr, stderr_w]
            self.pid = os.posix_spawn(
                argv[0],
                argv,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, stdin_r, 0),
                    (os.POSIX_SPAWN_DUP2, stdout_w, 1),
                    (os.POSIX_SPAWN_DUP2, stderr_w, 2),
                ],
                setsid=True,
            )
        except BaseException:
            for fd in opened:
                os.close(fd)
            raise
        for fd in (stdin_r, stdout_w, stderr_w):
            os.close(fd)
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code (negative: the signal that ended it), or None when ``timeout`` (s) passed."""
        if self.returncode is None and (timeout is None or self._exits_within(timeout)):
            self._collect(0)
        return self.returncode

    def _collect(self, flags: int) -> bool:
        """waitpid once; True when it has ended (and its code is kept)."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, flags)
            if pid == 0:
                return False
            self.returncode = os.waitstatus_to_exitcode(status)
        return True

    def _exits_within(self, timeout: float) -> bool:
        try:
            fd = os.pidfd_open(self.pid)
        except OSError:  # a kernel without pidfds: look every 10 ms
            deadline = time.monotonic() + timeout
            while not self._collect(os.WNOHANG):
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
            return True
        try:
            return bool(select.select([fd], [], [], timeout)[0])
        finally:
            os.close(fd)

    def reap(self) -> None:
        """Close its pipes and collect it: now if it has ended, else (a call that went away, whose
        group was killed) by a thread that waits for it."""
        for fd in (self.stdin, self.stdout, self.stderr):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.stdin = self.stdout = self.stderr = -1
        if not self._collect(os.WNOHANG):
            threading.Thread(target=os.waitpid, args=(self.pid, 0), daemon=True).start()


def _start_failed(message: str, duration_s: float = 0.0) -> pb.ExecEvent:
    # duration_s 0.0 is proto3's default: the same message as leaving it out.
    return pb.ExecEvent(
        exit=pb.ExecExit(reason=pb.EXIT_REASON_START_FAILED, exit_code=127, message=message, duration_s=duration_s)
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _stream_output(
    proc: _Spawned, deadline: float | None, kill_group: Callable[[], None]
) -> Generator[pb.ExecEvent, None, bool]:
    """Yield the command's output until both its streams close; return whether it timed out.
    Read here, in the call's own thread, with poll(2): no reader threads to start per command
    (each costs milliseconds under emulation) and no queue between them and the stream."""
    kinds = {proc.stdout: pb.OUTPUT_STREAM_STDOUT, proc.stderr: pb.OUTPUT_STREAM_STDERR}
    with selectors.DefaultSelector() as selector:
        for fd in kinds:
            selector.register(fd, selectors.EVENT_READ)
        timed_out = False
        while kinds:
            if deadline is not None and time.monotonic() >= deadline:  # even while output flows
                timed_out = True
                kill_group()
                deadline = None
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = selector.select(timeout)
            for key, _ in ready:
                fd = int(key.fd)
                try:
                    data = os.read(fd, CHUNK)
                except InterruptedError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(fd)
                    del kinds[fd]
                    continue
                yield pb.ExecEvent(output=pb.ExecOutput(stream=kinds[fd], data=data))
    if deadline is not None:
        remaining = max(0.0, deadline - time.monotonic())
        if proc.wait(timeout=remaining) is None:
            timed_out = True
            kill_group()
    return timed_out


def _exit_result(code: int, *, timed_out: bool, duration: float, timeout_s: float) -> pb.ExecExit:
    if timed_out:
        return pb.ExecExit(
            reason=pb.EXIT_REASON_TIMED_OUT,
            signal=signal.SIGKILL,
            duration_s=duration,
            message=f"killed after {timeout_s:g} s",
        )
    if code < 0:
        return pb.ExecExit(reason=pb.EXIT_REASON_SIGNALED, signal=-code, duration_s=duration)
    return pb.ExecExit(reason=pb.EXIT_REASON_EXITED, exit_code=code, duration_s=duration)


def _feed_stdin(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the command's stdin, then close it (a command that ended or
    stopped reading: the write fails, and it is closed all the same)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        pass
    finally:
        os.close(fd)
