"""The server side of a sandbox host: what ``paddock remote ...`` runs on the server, over SSH.

    paddock remote serve --session ID --sessions N   boot the session's sandbox; print one JSON line
                                                       when it runs; stop it and remove everything of the
                                                       session when stdin closes (the connection dropped)
    paddock remote connect --session ID              relay stdin/stdout to the session's guest agent
    paddock remote manifest --session ID             the workspace's files and their SHA-256, as JSON
    paddock remote files --session ID                put/get/remove files in the workspace (see files.py)
    paddock remote load                              how many sessions run here now

Everything runs unprivileged as the server account. Each session has its own folder under the
account's state folder, mode 0700 (a second account cannot open it); the session count is
enforced with one lock file per slot, released by the kernel when the process ends. Nothing
here holds a key or a token: the real keys and the egress gateway stay on the person's machine,
and the guest's only exit is the gRPC channel back to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import IO, Any

from platformdirs import user_state_path

from paddock.core.errors import PaddockError
from paddock.vm import Launcher, Share, VirtualMachine, share_handle_limit

SESSION_RE = r"[a-f0-9]{8,32}"


def state_root() -> Path:
    root = user_state_path("paddock-remote", appauthor=False)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)
    return root


def session_dir(session: str) -> Path:
    if not re.fullmatch(SESSION_RE, session):
        raise PaddockError(f"{session!r} is not a session id.")
    return state_root() / "sessions" / session


def _say(out: IO[str], **fields: Any) -> None:
    out.write(json.dumps(fields) + "\n")
    out.flush()


def _take_slot(limit: int) -> int | None:
    """Hold one of ``limit`` slot locks for the life of this process; None when all are taken."""
    slots = state_root() / "slots"
    slots.mkdir(mode=0o700, exist_ok=True)
    for n in range(limit):
        fd = os.open(slots / f"{n}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd  # kept open: the kernel lets go when this process ends, however it ends
    return None


def load() -> int:
    """Sessions running under this account now (slots whose lock is held)."""
    slots = state_root() / "slots"
    busy = 0
    for path in slots.glob("*.lock") if slots.is_dir() else []:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy += 1
        finally:
            os.close(fd)
    return busy


async def serve(session: str, limit: int, *, read_only: bool = False, memory_mib: int = 1024) -> int:
    out = sys.stdout
    slot = _take_slot(limit)
    if slot is None:
        _say(out, ok=False, error=f"This sandbox host is already running its {limit} sessions.")
        return 3
    home = session_dir(session)
    home.parent.mkdir(mode=0o700, exist_ok=True)
    _sweep(home.parent)
    lock = home.parent / f"{session}.lock"  # held while the session runs, however this process ends
    alive = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(alive, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(alive)
        _say(out, ok=False, error="A session with this id is already running on this host.")
        return 3
    shutil.rmtree(home, ignore_errors=True)  # what a killed session of this id left
    home.mkdir(mode=0o700)
    vm: VirtualMachine | None = None
    try:
        workspace, profile = home / "workspace", home / "profile"
        workspace.mkdir(mode=0o700)
        profile.mkdir(mode=0o700)
        launcher = await Launcher.find()  # the same start as a sandbox's cold boot on the person's machine
        shares = (Share("workspace", workspace, read_only=read_only), Share("profile", profile, read_only=True))
        vm = await launcher.start(launcher.config(shares, memory_mib=memory_mib))
        (home / "agent").write_text(str(vm.agent_socket))
        _say(
            out, ok=True, workspace=str(workspace), share_handles=share_handle_limit(), accel=launcher.accel.accel.value
        )
        await _until_dropped(vm, out)
        return 0
    except PaddockError as exc:
        _say(out, ok=False, error=exc.message)
        return 3
    finally:
        if vm is not None:
            await vm.stop()
        shutil.rmtree(home, ignore_errors=True)
        lock.unlink(missing_ok=True)
        os.close(alive)
        os.close(slot)


def _sweep(sessions: Path) -> None:
    """Remove what sessions left when their process was killed outright (nobody holds their lock)."""
    for old in sessions.iterdir():
        if not old.is_dir() or old.is_symlink():
            continue
        try:
            fd = os.open(sessions / f"{old.name}.lock", os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            shutil.rmtree(old, ignore_errors=True)  # no lock at all: not a live session
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # running
        else:
            shutil.rmtree(old, ignore_errors=True)
            (sessions / f"{old.name}.lock").unlink(missing_ok=True)
        finally:
            os.close(fd)


async def _until_dropped(vm: VirtualMachine, out: IO[str]) -> None:
    """Wait for stdin to close (the person's end went away) or the VM to fail (said on stdout)."""
    loop = asyncio.get_running_loop()
    dropped = loop.create_future()

    def drop() -> None:
        if not dropped.done():
            dropped.set_result(None)

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
        loop.add_signal_handler(sig, drop)

    def readable() -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            drop()

    loop.add_reader(0, readable)
    failed = asyncio.ensure_future(vm.failed())
    try:
        await asyncio.wait({dropped, failed}, return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            with contextlib.suppress(OSError, ValueError):
                _say(out, ok=False, failed=failed.result())
    finally:
        loop.remove_reader(0)
        failed.cancel()


def connect(session: str) -> int:
    """Relay this process's stdin/stdout to the session's guest agent socket, byte for byte."""
    home = session_dir(session)
    try:
        agent = Path((home / "agent").read_text())
    except OSError:
        sys.stderr.write("No such session is running here.\n")
        return 3
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(agent))
    except OSError as exc:
        sys.stderr.write(f"The session's sandbox is not answering ({exc.strerror}).\n")
        return 3
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    while True:
        ready, _, _ = select.select([stdin, sock], [], [])
        if stdin in ready:
            data = os.read(stdin, 65536)
            if not data:
                return 0
            sock.sendall(data)
        if sock in ready:
            data = sock.recv(65536)
            if not data:
                return 0
            view = memoryview(data)
            while view:
                view = view[os.write(stdout, view) :]


def manifest(session: str) -> dict[str, Any]:
    """The workspace's regular files and their SHA-256 (see ``paddock.remote.files.manifest``)."""
    from paddock.remote.files import manifest as listing

    files, unreadable = listing(session_dir(session))
    return {"files": files, "unreadable": unreadable}


def files(session: str) -> int:
    """Move files in and out of the workspace on request (``paddock.remote.files``)."""
    from paddock.remote.files import serve_files

    return serve_files(session_dir(session))
