"""The way in: the virtio-serial port `paddock.agent`, joined to the gRPC server's unix socket.

By the static relay ``paddock-relay`` (guest_image/helper/relay.c) in its own process: every
message of every call crosses it, and in Python each crossing woke a thread under emulation. The
Python relay below is what the agent falls back to when the binary is missing (an image built
before it), and the relay's model."""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time

from paddock_guest.config import CHUNK, RELAY, log


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


def _pump_to_port(s: socket.socket, fd: int) -> None:
    """Carry what the gRPC server says back to the port, until it hangs up."""
    try:
        while True:
            data = s.recv(CHUNK)
            if not data:
                break
            _write_all(fd, data)
    except OSError:
        pass


def _read_port(fd: int) -> bytes | None:
    """What the host sent: some bytes, b"" when its end is closed, or None to poll again."""
    try:
        return os.read(fd, CHUNK)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EINTR):
            return None
        return b""


def _hang_up(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def _connect(sock_path: str, fd: int) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(sock_path)
    threading.Thread(target=_pump_to_port, args=(conn, fd), daemon=True).start()
    return conn


def relay(port_path: str, sock_path: str) -> None:
    """Join the virtio-serial port to the agent's unix socket.

    The port reads EOF while no host client is connected; each host
    connection gets a fresh connection to the gRPC server, so a host that
    goes away cancels its calls.
    """
    fd = os.open(port_path, os.O_RDWR | os.O_CLOEXEC)
    conn: socket.socket | None = None
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        events = poller.poll(1000)
        if not events:
            continue
        data = _read_port(fd)
        if data is None:
            continue
        if not data:
            # The host end is closed. Drop our side and wait for a new host.
            if conn is not None:
                _hang_up(conn)
                conn = None
            time.sleep(0.02)
            continue
        if conn is None:
            conn = _connect(sock_path, fd)
        try:
            conn.sendall(data)
        except OSError:
            conn.close()
            conn = None


def start_relay(port_path: str, sock_path: str) -> str:
    """Join the port to the socket: the static relay in its own process, watched by a thread
    that ends the agent if it ever stops (init starts the agent again, and it a new relay), or
    the Python relay in a thread without the binary. Returns which, for the log. Call it from
    the agent's main thread: the relay's parent-death signal follows the thread that started it."""
    if not os.access(RELAY, os.X_OK):
        threading.Thread(target=relay, args=(port_path, sock_path), daemon=True).start()
        return "Python relay"
    pid = os.posix_spawn(RELAY, [RELAY, port_path, sock_path], dict(os.environ))
    threading.Thread(target=_watch_relay, args=(pid,), name="relay", daemon=True).start()
    return f"relay {pid}"


def _watch_relay(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    log(f"the relay stopped (status {status}); the agent stops so that init starts both again")
    os._exit(1)
