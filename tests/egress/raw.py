"""A real egress gateway on loopback (no VM) and a raw client for it, byte by byte.

The client speaks to the gateway the way a guest program could: a CONNECT with its session
token, TLS with the gateway's CA, then whatever bytes it likes inside the tunnel (absolute-form
targets, forged Host headers, broken bodies). The gateway is the product's own
(``EgressGateway``: mitmproxy with Paddock's addon); the upstream is ``tests.egress.upstream``.
"""

from __future__ import annotations

import base64
import socket
import ssl
from pathlib import Path


def _read_response(sock: socket.socket | ssl.SSLSocket, limit: int = 1 << 20) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def status_of(response: bytes) -> int:
    """The status code of a raw response (0: none came)."""
    parts = response.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def through_tunnel(port: int, token: str, ca: Path, host: str, raw: bytes, *, timeout: float = 30.0,
                   connect_to: str | None = None, sni: str | None = None) -> bytes:  # fmt: skip
    """CONNECT to ``connect_to`` (default: ``host:443``) with ``token``, then send ``raw`` inside
    TLS; the CONNECT's refusal or the response inside the tunnel (b"" when the connection closed)."""
    auth = base64.b64encode(f"paddock:{token}".encode()).decode()
    target = connect_to or f"{host}:443"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as plain:
        plain.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
                      .encode())  # fmt: skip
        reply = _read_response(plain)
        if status_of(reply) != 200:
            return reply
        context = ssl.create_default_context(cafile=str(ca))
        context.check_hostname = False  # the test names what it sends; the gateway's certificate is checked
        with context.wrap_socket(plain, server_hostname=sni or host) as tls:
            try:
                tls.sendall(raw)
                return _read_response(tls)
            except (OSError, ssl.SSLError):  # the gateway closed the connection
                return b""


def plain_proxy(port: int, token: str, raw_without_auth: bytes, *, timeout: float = 30.0) -> bytes:
    """A plain-HTTP proxy request (absolute-form); the token goes in as Proxy-Authorization."""
    auth = base64.b64encode(f"paddock:{token}".encode())
    line, _, rest = raw_without_auth.partition(b"\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(line + b"\r\nProxy-Authorization: Basic " + auth + b"\r\n" + rest)
        return _read_response(sock)


def raw_tunnel(port: int, token: str, target: str, data: bytes, *, timeout: float = 10.0) -> bytes:
    """CONNECT to ``target`` with ``token``, then send ``data`` as they are (no TLS); what came back."""
    auth = base64.b64encode(f"paddock:{token}".encode()).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
                     .encode())  # fmt: skip
        reply = _read_response(sock)
        if status_of(reply) != 200:
            return reply
        sock.sendall(data)
        try:
            return sock.recv(65536)
        except OSError:
            return b""
