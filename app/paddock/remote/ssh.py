"""The SSH connection to a sandbox host (paramiko; the only user of it).

The host key is checked against the fingerprint the managed policy pins before anything else is
sent: an unknown or changed key ends the connection with a plain message, never a prompt, and
nothing is written to a known_hosts file. The person's key comes from the keychain (the entry
the policy names) or from their ssh-agent.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import shlex
import socket
import threading
import time
from dataclasses import dataclass

import paramiko

from paddock.core.errors import PaddockError
from paddock.policy import SandboxHost

CONNECT_TIMEOUT_S = 10.0
OUT_MAX = 64 * 1024 * 1024  # what one ``paddock remote`` command may answer (a listing of the workspace)
ERR_MAX = 4 * 1024 * 1024  # of its stderr, what is kept (the rest is read and dropped)
RUN_MAX_S = 600.0


class RemoteError(PaddockError):
    """A sandbox host could not be reached, refused us, or went away."""


class HostKeyRefused(RemoteError):
    """The server's host key is not the one the policy pins."""


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:...`` as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def load_private_key(text: str) -> paramiko.PKey:
    """A private key in OpenSSH or PEM form (ed25519, ECDSA or RSA)."""
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise RemoteError("The SSH key in the keychain could not be read (an unencrypted OpenSSH private key is needed).")


@dataclass
class Result:
    code: int
    out: bytes
    err: bytes


class Connection:
    """One authenticated SSH connection; channels for the server's ``paddock remote`` commands."""

    def __init__(self, host: SandboxHost, transport: paramiko.Transport) -> None:
        self.host = host
        self.transport = transport
        self._lock = threading.Lock()

    @classmethod
    def open(cls, host: SandboxHost, private_key: str | None) -> Connection:
        """Connect, check the host key against the pin, then log in. Blocking (run in a thread)."""
        where = f"the sandbox host {host.name!r} ({host.address}:{host.port})"
        try:
            sock = socket.create_connection((host.address, host.port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise RemoteError(f"Could not reach {where}: {exc.strerror or exc}.") from exc
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=CONNECT_TIMEOUT_S)
            seen = fingerprint(transport.get_remote_server_key())
            if seen != host.host_key:
                raise HostKeyRefused(
                    f"Refused {where}: it did not prove to be the server your organisation named "
                    f"(its host key is {seen}, the policy expects {host.host_key}). Nothing was sent.",
                    hint="Ask your administrator: the server may have been replaced, or someone may be in between.",
                )
            cls._log_in(transport, host, private_key, where)
        except paramiko.SSHException as exc:
            transport.close()
            raise RemoteError(f"Could not talk to {where}: {exc}.") from exc
        except BaseException:
            transport.close()
            raise
        transport.set_keepalive(5)
        return cls(host, transport)

    @staticmethod
    def _log_in(transport: paramiko.Transport, host: SandboxHost, private_key: str | None, where: str) -> None:
        agent = None if private_key else paramiko.Agent()
        try:
            Connection._log_in_with(transport, host, private_key, agent, where)
        finally:
            if agent is not None:
                agent.close()  # one agent socket per connection otherwise stays open

    @staticmethod
    def _log_in_with(
        transport: paramiko.Transport,
        host: SandboxHost,
        private_key: str | None,
        agent: paramiko.Agent | None,
        where: str,
    ) -> None:
        keys: list[paramiko.PKey] = (
            [load_private_key(private_key)] if private_key else list(agent.get_keys() if agent else [])
        )
        if not keys:
            raise RemoteError(
                f"No SSH key to log in to {where}: the keychain entry {host.key!r} is empty"
                if host.key
                else f"No SSH key to log in to {where}: your ssh-agent holds none."
            )
        for key in keys:
            try:
                transport.auth_publickey(host.account, key)
            except paramiko.AuthenticationException:
                continue
            if transport.is_authenticated():
                return
        raise RemoteError(f"{where} did not accept your key for the account {host.account!r}.")

    @property
    def alive(self) -> bool:
        return self.transport.is_active()

    def command(self, *args: str) -> str:
        """The server-side ``paddock remote ARGS`` as one command line."""
        return " ".join([*(shlex.quote(w) for w in shlex.split(self.host.command)), "remote", *map(shlex.quote, args)])

    def channel(self, *args: str) -> paramiko.Channel:
        """A session channel running ``paddock remote ARGS`` on the server."""
        try:
            with self._lock:
                chan = self.transport.open_session(timeout=CONNECT_TIMEOUT_S)
            chan.exec_command(self.command(*args))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise RemoteError(f"The connection to the sandbox host {self.host.name!r} dropped ({exc}).") from exc
        return chan

    def run(self, *args: str, stdin: bytes = b"", limit: int = OUT_MAX, seconds: float = RUN_MAX_S) -> Result:
        """Run ``paddock remote ARGS`` to completion. What the server sends is bounded: at most
        ``limit`` bytes on stdout (more is an error, not memory), ``ERR_MAX`` kept of stderr, and
        ``seconds`` in all (a server that trickles for ever is cut off)."""
        chan = self.channel(*args)
        deadline = time.monotonic() + seconds
        try:
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()

            def drain_stderr() -> None:  # read alongside stdout: a full stderr window must not stall it
                with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                    while data := chan.recv_stderr(65536):
                        err.extend(data[: max(0, ERR_MAX - len(err))])  # read on, keep the first part

            reader = threading.Thread(target=drain_stderr, name="ssh-stderr", daemon=True)
            reader.start()
            chan.settimeout(1.0)
            while True:
                if time.monotonic() > deadline:
                    raise RemoteError(f"The sandbox host {self.host.name!r} took more than {seconds:g} s to answer.")
                try:
                    data = chan.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                out += data
                if len(out) > limit:
                    raise RemoteError(f"The sandbox host {self.host.name!r} sent more than {limit:,} bytes "
                                      "where an answer was expected; it was not read further.")  # fmt: skip
            chan.settimeout(max(1.0, deadline - time.monotonic()))
            code = chan.recv_exit_status()
            reader.join(10)
            return Result(code, bytes(out), bytes(err))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise RemoteError(f"The connection to the sandbox host {self.host.name!r} dropped ({exc}).") from exc
        finally:
            chan.close()

    def close(self) -> None:
        self.transport.close()
