"""The real gateway (mitmproxy with Paddock's rules, as the product starts it) against requests a
guest program could write, byte by byte: generated request lines, headers and JSON bodies (wrong
types, duplicate keys, deep nesting, huge numbers, invalid UTF-8, compression), and the cases an
independent review found. For every request, either it reached the upstream with only allowed
headers, the real credential and nothing outside the grant's profile, or it was refused and the
refusal recorded; never the guest's own credential upstream.

The upstream (``tests.egress.upstream``) records what really arrived; the gateway's decisions
are read from its own log.
"""

from __future__ import annotations

import gzip
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from paddock.core.engine import Engine
from paddock.egress import EgressGateway, TokenAuthority, gateway
from paddock.egress.profiles import ANTHROPIC_FIELDS, OPENAI_FIELDS
from paddock.egress.rules import FORWARD_HEADERS
from paddock.policy import EgressGrant
from tests.egress.raw import raw_tunnel, status_of, through_tunnel
from tests.egress.upstream import Upstream

HOST = "api.example.test"
RAW_HOST = "raw.example.test"  # its upstream is a plain TCP listener that records every byte
GUEST_KEY = f"guest-own-key-{secrets.token_hex(8)}"
GUEST_CREDENTIALS = {"x-api-key": GUEST_KEY, "authorization": f"Bearer {GUEST_KEY}", "cookie": f"s={GUEST_KEY}",
                     "x-auth-token": GUEST_KEY, "api-key": GUEST_KEY}  # fmt: skip
GRANTS = [
    EgressGrant(id="messages", host=HOST, methods=["GET", "POST"], path_pattern="/v1/*", credential="anthropic",
                credential_header="x-api-key", api="anthropic-messages"),
    EgressGrant(id="chat", host=HOST, methods=["GET", "POST"], path_pattern="/openai/*", credential="openai",
                api="openai-chat"),
    EgressGrant(id="open", host=HOST, methods=["POST"], path_pattern="/open/*"),
    EgressGrant(id="raw", host=RAW_HOST, methods=["POST"], path_pattern="/x"),
]  # fmt: skip
PLAIN = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class Listener:
    """A plain TCP server that records what each connection sent."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2.0)
                try:
                    self.received.append(conn.recv(65536) or b"(connected)")
                except OSError:
                    self.received.append(b"(connected)")

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@dataclass
class Gateway:
    gateway: EgressGateway
    upstream: Upstream
    token: str
    secrets: dict[str, str]
    raw: Listener
    engine: Engine

    def send(self, raw: bytes, **kw: Any) -> tuple[int, list[dict[str, Any]], list[Any]]:
        """Send ``raw`` inside a tunnel; the status, what reached the upstream, the decisions made."""
        before = len(self.upstream.hits)
        self.gateway.decisions()
        ca = self.gateway.confdir / "mitmproxy-ca-cert.pem"
        status = status_of(through_tunnel(self.gateway.port, self.token, ca, HOST, raw, **kw))
        self.engine.run(self.gateway.settle(), timeout=60)  # every decision made so far has arrived
        return status, self.upstream.hits[before:], self.gateway.decisions()


@pytest.fixture(scope="module")
def gw(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    base = tmp_path_factory.mktemp("gateway")
    upstream, raw = Upstream(base, HOST), Listener()
    gateway.LOOPBACK_UPSTREAMS[HOST] = f"127.0.0.1:{upstream.port}"
    gateway.LOOPBACK_UPSTREAMS[RAW_HOST] = f"127.0.0.1:{raw.port}"
    gateway.UPSTREAM_CA = upstream.ca
    keys = {"anthropic": f"real-anthropic-{secrets.token_hex(8)}", "openai": f"real-openai-{secrets.token_hex(8)}"}
    gw = EgressGateway(base / "gw", "vmproperties", GRANTS, keys)
    try:
        engine.run(gw.start(), timeout=120)
        token = TokenAuthority().mint("vmproperties", [g.id for g in GRANTS]).value
        yield Gateway(gw, upstream, token, keys, raw, engine)
    finally:
        engine.run(gw.stop(), timeout=60)
        gateway.LOOPBACK_UPSTREAMS.clear()
        gateway.UPSTREAM_CA = None
        upstream.close()
        raw.close()


def request(method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None,
            host: str | None = HOST) -> bytes:  # fmt: skip
    lines = [f"{method} {target} HTTP/1.1"] + ([f"Host: {host}"] if host is not None else [])
    lines += [f"{k}: {v}" for k, v in {**GUEST_CREDENTIALS, "Content-Type": "application/json",
                                        **(headers or {})}.items()]  # fmt: skip
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ------------------------------------------------------------------------- what may arrive upstream

SERVER_SIDE = {"mcp_servers", "web_search_options", "container", "file_id", "url", "audio", "store"}


def _fetching(node: Any) -> str | None:
    """Anything in a body that makes the provider reach out by itself (checked independently of
    the gateway's own code)."""
    if isinstance(node, dict):
        if "file_id" in node:
            return "file_id"
        kind = node.get("type")
        if isinstance(kind, str) and (kind in ("url", "file", "mcp", "container_upload")
                                      or kind.startswith(("web_", "code_execution", "computer", "bash_",
                                                          "text_editor", "memory", "tool_search"))):  # fmt: skip
            return kind
        image = node.get("image_url")
        if isinstance(image, dict) and not str(image.get("url", "")).startswith("data:"):
            return "image by URL"
        return next((p for v in node.values() if (p := _fetching(v))), None)
    if isinstance(node, list):
        return next((p for v in node if (p := _fetching(v))), None)
    return None


def assert_safe(gw: Gateway, status: int, hits: list[dict[str, Any]], decisions: list[Any]) -> None:
    """The invariant: forwarded with only allowed headers and the real credential, or refused and recorded."""
    everything = json.dumps([{**h, "body": h["body"].decode("latin-1")} for h in hits])
    assert GUEST_KEY not in everything, f"the guest's own credential reached the upstream: {hits}"
    if not hits:
        assert not any(d.allowed for d in decisions), decisions
        if status == 400:  # mitmproxy could not read it as HTTP at all: nothing to forward or to record
            return
        assert status in (403, 407, 413), f"refused without a refusal ({status})"
        assert decisions, f"a refusal was not recorded ({status})"
        return
    assert len(hits) == 1 and status == 200, (status, hits)
    hit = hits[0]
    assert [d.allowed for d in decisions] == [True], decisions
    grant = next(g for g in GRANTS if g.id == decisions[0].grant)
    assert hit["path"].startswith("/"), f"not origin-form upstream: {hit['path']}"
    assert hit["headers"]["host"] == HOST, hit["headers"]
    allowed = FORWARD_HEADERS | set(grant.forward_headers) | {grant.credential_header}
    assert set(hit["headers"]) <= allowed, set(hit["headers"]) - allowed
    if grant.credential:
        real = gw.secrets[grant.credential]
        assert hit["headers"][grant.credential_header] in (real, f"Bearer {real}"), hit["headers"]
    if grant.api != "any" and hit["method"] == "POST":
        body = json.loads(hit["body"])
        fields = ANTHROPIC_FIELDS if grant.api == "anthropic-messages" else OPENAI_FIELDS
        assert isinstance(body, dict) and set(body) <= fields and not set(body) & SERVER_SIDE, body
        assert _fetching(body) is None, (_fetching(body), body)


# ------------------------------------------------------------------------------- the review's cases


def test_a_body_that_broke_the_checker_is_refused_and_recorded(gw: Gateway) -> None:
    """A ``tools`` that is not a list raised TypeError, deep nesting RecursionError; mitmproxy then
    forwarded the request unchecked, with the guest's own key and ``mcp_servers``."""
    for body in (json.dumps({**PLAIN, "tools": 5, "mcp_servers": [{"type": "url", "url": "https://x.example"}]}),
                 '{"model": "m", "messages": ' + "[" * 5000 + "]" * 5000 + "}"):  # fmt: skip
        status, hits, decisions = gw.send(request("POST", "/v1/messages", body.encode()))
        assert hits == [] and status == 403, (status, hits)
        assert_safe(gw, status, hits, decisions)


def test_an_exception_anywhere_in_the_rules_refuses_and_is_recorded(gw: Gateway) -> None:
    """A damaged session-grants file makes grant matching raise deep inside the rules (for a path
    no grant of the policy covers, so the matcher reaches the damaged entry)."""
    grants_file = gw.gateway.run_dir / "session-grants.json"
    grants_file.write_text("[5]")
    try:
        status, hits, decisions = gw.send(request("POST", "/upload", json.dumps(PLAIN).encode()))
    finally:
        grants_file.unlink()
    assert hits == [] and status == 403, (status, hits)
    assert decisions and "internal error" in decisions[-1].reason, decisions
    assert_safe(gw, status, hits, decisions)


@pytest.mark.parametrize("target", ["https://elsewhere.example/v1/messages", "http://api.example.test/v1/messages",
                                    "https://api.example.test:8443/v1/messages", "https://user@elsewhere.example/v1/messages",
                                    "https://api.example.test/v1/messages"])  # fmt: skip
def test_an_absolute_form_target_inside_a_tunnel_is_refused(gw: Gateway, target: str) -> None:
    status, hits, decisions = gw.send(request("POST", target, json.dumps(PLAIN).encode()))
    assert hits == [] and status in (400, 403), (target, status, hits)  # 400: mitmproxy could not read it
    assert_safe(gw, status, hits, decisions)


def test_a_request_with_no_or_two_host_headers_is_refused(gw: Gateway) -> None:
    body = json.dumps(PLAIN).encode()
    for raw in (request("POST", "https://elsewhere.example/v1/messages", body, host=None),
                request("POST", "/v1/messages", body, headers={"Host": "elsewhere.example"})):  # fmt: skip
        status, hits, decisions = gw.send(raw)
        assert hits == [] and status == 403, (raw[:200], status, hits)
        assert_safe(gw, status, hits, decisions)


@pytest.mark.parametrize("header", ["Content-Encoding", "Content-Type"])
def test_a_framing_header_carrying_free_text_is_refused(gw: Gateway, header: str) -> None:
    """Found by the generated bodies below (a rare draw): on a grant with no API profile the
    gateway passed Content-Encoding and Content-Type on untouched, so a guest's own key written
    there reached the upstream. A well-formed value still passes on the same grant."""
    for value in (GUEST_KEY, f"Bearer {GUEST_KEY}"):
        status, hits, decisions = gw.send(request("POST", "/open/x", b"{}", headers={header: value}))
        assert hits == [] and status == 403, (header, value, status, hits)
        assert_safe(gw, status, hits, decisions)
    good = "gzip" if header == "Content-Encoding" else "text/plain; charset=utf-8"
    body = gzip.compress(b"{}") if header == "Content-Encoding" else b"{}"
    status, hits, decisions = gw.send(request("POST", "/open/x", body, headers={header: good}))
    assert status == 200 and len(hits) == 1 and hits[0]["headers"][header.lower()] == good, (status, hits)


def test_a_body_over_the_limit_is_refused_before_it_is_read(gw: Gateway) -> None:
    body = json.dumps({**PLAIN, "system": "x" * (11 * 1024 * 1024)}).encode()
    status, hits, decisions = gw.send(request("POST", "/v1/messages", body))
    assert hits == [] and status in (0, 413), status  # 0: the gateway closed the connection
    assert [(d.allowed, d.reason) for d in decisions] == [(False, "the request body is too large")], decisions


def test_a_stream_that_is_not_http_is_never_passed_through(gw: Gateway) -> None:
    """mitmproxy passes what is neither TLS nor HTTP through a tunnel as raw TCP, unchecked."""
    for data in (b"\x00\x01not http at all\r\n\r\n", b"SSH-2.0-OpenSSH_9.2\r\n\r\n"):
        raw_tunnel(gw.gateway.port, gw.token, f"{RAW_HOST}:443", data)
    time.sleep(0.5)
    assert gw.raw.received == [], f"raw bytes reached the granted host: {gw.raw.received}"


def test_a_plain_request_on_each_profile_reaches_the_upstream_with_the_real_key(gw: Gateway) -> None:
    for path, body in (("/v1/messages", PLAIN), ("/openai/v1/chat/completions", CHAT), ("/open/x", {"a": 1})):
        status, hits, decisions = gw.send(request("POST", path, json.dumps(body).encode()))
        assert len(hits) == 1, (path, status, decisions)
        assert_safe(gw, status, hits, decisions)
    status, hits, decisions = gw.send(request("POST", "/v1/messages", json.dumps(PLAIN).encode()),
                                      connect_to=f"{HOST.upper()}:443")  # fmt: skip
    assert len(hits) == 1
    assert_safe(gw, status, hits, decisions)


# ------------------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=12,
)
DANGEROUS: dict[str, Any] = {
    "mcp_servers": [{"type": "url", "url": "https://evil.example/mcp", "name": "x"}],
    "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    "web_search_options": {},
    "container": "c1",
    "store": True,
    "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://e.example"}}]}],
    "documents": [{"type": "document", "source": {"type": "file", "file_id": "f"}}],
}  # fmt: skip
CHAT_DANGEROUS = [
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://evil.example/x.png"}}]},
    {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]},
    {"role": "assistant", "audio": {"id": "audio-1"}},
]
field_names = st.sampled_from(sorted(ANTHROPIC_FIELDS | OPENAI_FIELDS | set(DANGEROUS) | {"x", "file_id"}))


def _mutated(base: dict[str, Any]) -> st.SearchStrategy[bytes]:
    changes = st.dictionaries(field_names, json_values | st.sampled_from(list(DANGEROUS.values())), max_size=4)
    messages = st.lists(st.sampled_from(CHAT_DANGEROUS + base["messages"]), min_size=1, max_size=3)
    return st.builds(lambda c, m: json.dumps({**base, "messages": m, **c}).encode(), changes, messages)


bodies = st.one_of(
    _mutated(PLAIN),
    _mutated(CHAT),
    st.integers(min_value=60, max_value=3000).map(lambda n: b'{"messages": ' + b"[" * n + b"]" * n + b"}"),
    st.integers(min_value=30, max_value=5000).map(lambda n: b'{"model": "m", "max_tokens": 1' + b"0" * n + b"}"),
    st.just(b'{"model": "m", "messages": [], "tools": [], "tools": [{"type": "web_fetch_20250910", "name": "f"}]}'),
    st.just(b'{"model": "m", "max_tokens": NaN, "messages": []}'),
    st.binary(max_size=64),
    st.text(max_size=40).map(lambda t: b"\xef\xbb\xbf" + json.dumps({**PLAIN, "system": t}).encode()),
)
paths = st.sampled_from(["/v1/messages", "/v1/messages/count_tokens", "/v1/messages/batches", "/v1/files",
                         "/openai/v1/chat/completions", "/openai/v1/responses", "/openai/v1/files",
                         "/open/x"])  # fmt: skip
extra_headers = st.dictionaries(
    st.sampled_from(["Content-Encoding", "Content-Type", "anthropic-beta", "X-Api-Key", "Proxy-Authorization",
                     "Private-Token", "X-Forwarded-Host", "Transfer-Encoding"]),
    st.sampled_from(["gzip", "identity", "application/json", "text/plain", "mcp-client-2025-04-04", GUEST_KEY,
                     f"Bearer {GUEST_KEY}", "elsewhere.example"]),
    max_size=3,
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])  # fmt: skip
@given(path=paths, body=bodies, headers=extra_headers, compress=st.booleans())
def test_generated_bodies_are_forwarded_safely_or_refused(gw: Gateway, path: str, body: bytes,
                                                          headers: dict[str, str], compress: bool) -> None:  # fmt: skip
    if compress:
        body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
    if headers.get("Transfer-Encoding"):
        headers.pop("Transfer-Encoding")  # the framing is the raw client's; a body length always goes with it
    status, hits, decisions = gw.send(request("POST", path, body, headers))
    event("forwarded" if hits else f"refused {status}")
    assert_safe(gw, status, hits, decisions)


hosts = st.sampled_from([HOST, HOST.upper(), "elsewhere.example", "127.0.0.1", f"{HOST}.evil.example",
                         f"{HOST}:443@evil.example", f"evil.example@{HOST}"])  # fmt: skip
targets = st.one_of(
    st.sampled_from(["/v1/messages", "/openai/v1/chat/completions", "/open/x", "/v1/../files", "/v1/%2e%2e/files"]),
    st.builds(lambda s, h, p, path: f"{s}://{h}{p}{path}", st.sampled_from(["https", "http"]), hosts,
              st.sampled_from(["", ":443", ":80", ":8443"]), st.sampled_from(["/v1/messages", "/open/x"])),
)  # fmt: skip
host_headers = st.one_of(st.just(HOST), st.none(), hosts, st.builds(lambda h: f"{h}:443", hosts))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])  # fmt: skip
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), target=targets, host=host_headers,
       sni=st.sampled_from([HOST, HOST, HOST, "elsewhere.example"]))  # fmt: skip
def test_generated_request_lines_and_hosts_stay_with_the_tunnel(gw: Gateway, method: str, target: str,
                                                                host: str | None, sni: str) -> None:  # fmt: skip
    body = json.dumps(CHAT if "openai" in target else PLAIN).encode() if method != "GET" else b""
    status, hits, decisions = gw.send(request(method, target, body, host=host), sni=sni)
    event("forwarded" if hits else f"refused {status}")
    assert_safe(gw, status, hits, decisions)
    if hits:
        named = target.split("://", 1)[1].split("/", 1)[0] if "://" in target else HOST
        assert named.lower() in (HOST, f"{HOST}:443") and target.startswith("/"), target
        assert host is not None and host.lower() in (HOST, f"{HOST}:443") and sni == HOST, (host, sni)
