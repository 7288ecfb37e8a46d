"""Exec: run one command as the workspace's owner, in its own process group, and stream it."""

from __future__ import annotations

import functools
import os
import re
import selectors
import shutil
import signal
import subprocess
import threading
import time
import uuid
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
    exec_id = request.command_id if COMMAND_ID.fullmatch(request.command_id) else uuid.uuid4().hex[:12]
    started = time.monotonic()
    uid, gid = workspace_owner()
    argv = list(request.argv)
    if "/" not in argv[0] and shutil.which(argv[0], path=env["PATH"]) is None:
        yield _start_failed(f"command not found: {argv[0]}")
        return
    try:
        proc = subprocess.Popen(
            _wrap_argv(argv, uid, gid),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if request.stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        yield _start_failed(
            f"could not start {request.argv[0]!r}: {exc.strerror}", duration_s=time.monotonic() - started
        )
        return

    kill_group = functools.partial(_kill_group, proc.pid)
    context.add_callback(kill_group)  # the caller went away: kill everything
    RUNS.started(proc.pid, exec_id)
    hub.publish(
        process_started=pb.ProcessStarted(exec_id=exec_id, pid=proc.pid, argv=list(request.argv), cwd=request.cwd)
    )
    yield pb.ExecEvent(started=pb.ExecStarted(exec_id=exec_id, pid=proc.pid))

    if request.stdin:
        threading.Thread(target=_feed_stdin, args=(proc, request.stdin), daemon=True).start()
    deadline = started + request.timeout_s if request.timeout_s > 0 else None
    timed_out = yield from _stream_output(proc, deadline, kill_group)
    code = proc.wait()
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


def _wrap_argv(argv: list[str], uid: int, gid: int) -> list[str]:
    """One exec of the static helper: join the commands' cgroup (pids, memory and cpu limits)
    before anything runs, become the folder's owner, run the command. (Not Popen(user=...):
    that stops subprocess from using vfork, and forking this process is slow under TCG.)"""
    if EXEC_AS_ROOT:
        uid = gid = 0
    cgroup = COMMANDS_CGROUP if os.path.exists(COMMANDS_CGROUP) else "-"
    return [RUNAS, cgroup, str(uid), str(gid), "--", *argv]


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
    proc: subprocess.Popen[bytes], deadline: float | None, kill_group: Callable[[], None]
) -> Generator[pb.ExecEvent, None, bool]:
    """Yield the command's output until both its streams close; return whether it timed out.
    Read here, in the call's own thread, with poll(2): no reader threads to start per command
    (each costs milliseconds under emulation) and no queue between them and the stream."""
    assert proc.stdout is not None and proc.stderr is not None
    kinds = {proc.stdout.fileno(): pb.OUTPUT_STREAM_STDOUT, proc.stderr.fileno(): pb.OUTPUT_STREAM_STDERR}
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
        try:
            proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
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
