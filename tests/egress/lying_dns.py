"""A mitmproxy script loaded into the gateway after Paddock's addon: it stands in for a lying
DNS server (DNS rebinding), which cannot be set up on the test machine without root.

The first lookup of the test's name answers a public address; every later one answers the
loopback upstream. It records the address the gateway was about to connect to and every
connection it really made, and it stops a connection to the public stand-in address (nothing
may leave the test machine). Configured by the test through ``LYING_DNS_CONFIG`` (a JSON file).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

CONFIG = json.loads(Path(os.environ["LYING_DNS_CONFIG"]).read_text())
NAME: str = CONFIG["name"]
PUBLIC: str = CONFIG["public"]
LOOPBACK_PORT: int = CONFIG["loopback_port"]
RECORD = Path(CONFIG["record"])
_real_getaddrinfo = socket.getaddrinfo
_answered = 0


def _lying_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    global _answered
    if host != NAME:
        return _real_getaddrinfo(host, port, *args, **kwargs)
    _answered += 1
    if _answered == 1:
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC, int(port)))]
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", LOOPBACK_PORT))]


socket.getaddrinfo = _lying_getaddrinfo


def _record(event: str, address: Any) -> None:
    with RECORD.open("a") as fh:
        fh.write(json.dumps({"event": event, "address": list(address) if address else None}) + "\n")


class LyingDns:
    def server_connect(self, data: Any) -> None:
        _record("connecting", data.server.address)
        if data.server.address and data.server.address[0] == PUBLIC:
            data.server.error = "stand-in public address: nothing leaves the test machine"

    def server_connected(self, data: Any) -> None:
        _record("connected", data.server.peername)


addons = [LyingDns()]
