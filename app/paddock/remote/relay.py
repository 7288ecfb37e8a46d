"""A local unix socket that carries the guest agent's gRPC byte stream to a sandbox host.

paramiko cannot forward unix sockets, so each connection the gRPC client makes to the local
socket becomes one SSH channel running ``paddock remote connect`` on the server, which relays
its stdin/stdout to the remote VM's agent socket. The socket lives in the person's private
runtime folder (0700), so only they can use it; the existing ``GuestClient`` works unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from pathlib import Path

import paramiko

from paddock.remote.ssh import Connection, RemoteError

log = logging.getLogger(__name__)


class AgentRelay:
    def __init__(self, connection: Connection, session: str, path: Path) -> None:
        self.connection = connection
        self.session = session
        self.path = path
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        path.chmod(0o600)
        self._server.listen(4)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name=f"relay-{session}", daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            t = threading.Thread(target=self._pump, args=(conn,), name=f"relay-{self.session}-conn", daemon=True)
            self._threads.append(t)
            t.start()

    def _pump(self, conn: socket.socket) -> None:
        chan: paramiko.Channel | None = None
        try:
            chan = self.connection.channel("connect", "--session", self.session)
            while not self._stopping.is_set():
                ready, _, _ = select.select([conn.fileno(), chan.fileno()], [], [], 1.0)
                if conn.fileno() in ready:
                    data = conn.recv(65536)
                    if not data:
                        break
                    chan.sendall(data)
                if chan.fileno() in ready:
                    data = chan.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
        except (OSError, EOFError, RemoteError, paramiko.SSHException) as exc:
            log.debug("relay %s: connection ended (%s)", self.session, exc)
        finally:
            if chan is not None:
                with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                    chan.close()  # the transport may be gone already
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self.path.unlink(missing_ok=True)
        for t in self._threads:
            t.join(timeout=2)
