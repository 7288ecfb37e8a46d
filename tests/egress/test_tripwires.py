"""Tripwires at the real gateway (mitmproxy with Paddock's rules, as the product starts it): a
request carrying one of the session's decoy secrets, however it is disguised, is refused and
recorded, and closes the session's egress; ordinary requests before it pass.

A fresh gateway (and fresh decoys) per case: a tripwire that fires closes its gateway for good.
The upstream (``tests.egress.upstream``) records what really arrived.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import secrets
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from paddock.core.engine import Engine
from paddock.egress import Decision, EgressGateway, TokenAuthority, gateway
from paddock.egress.tripwires import Planted, make_decoys
from paddock.policy import EgressGrant
from tests.egress.raw import status_of, through_tunnel
from tests.egress.upstream import Upstream

HOST = "tickets.example.test"
GRANTS = [EgressGrant(id="tickets", host=HOST, methods=["GET", "POST", "PUT"], path_pattern="/*")]


@dataclass
class Gate:
    gateway: EgressGateway
    upstream: Upstream
    token: str
    planted: Planted
    engine: Engine

    def send(self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
             ) -> tuple[int, int, list[Decision]]:  # fmt: skip
        """Status, how many requests reached the upstream, the decisions made."""
        before = len(self.upstream.hits)
        self.gateway.decisions()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines += [f"Content-Length: {len(body)}", "Connection: close"]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        ca = self.gateway.confdir / "mitmproxy-ca-cert.pem"
        status = status_of(through_tunnel(self.gateway.port, self.token, ca, HOST, raw))
        self.engine.run(self.gateway.settle(), timeout=60)  # every decision made so far has arrived
        return status, len(self.upstream.hits) - before, self.gateway.decisions()


@pytest.fixture
def gate(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    base = tmp_path_factory.mktemp("tripwires")
    upstream = Upstream(base, HOST)
    gateway.LOOPBACK_UPSTREAMS[HOST] = f"127.0.0.1:{upstream.port}"
    gateway.UPSTREAM_CA = upstream.ca
    planted = make_decoys()
    vm_id = "vmtrip" + secrets.token_hex(4)
    gw = EgressGateway(base / "gw", vm_id, GRANTS, {}, decoys=planted.decoys)
    try:
        engine.run(gw.start(), timeout=120)
        token = TokenAuthority().mint(vm_id, [g.id for g in GRANTS]).value
        yield Gate(gw, upstream, token, planted, engine)
    finally:
        engine.run(gw.stop(), timeout=60)
        gateway.LOOPBACK_UPSTREAMS.clear()
        gateway.UPSTREAM_CA = None
        upstream.close()


def _creds(p: Planted) -> bytes:
    return p.files["/home/agent/.aws/credentials"].encode()


def _key(p: Planted) -> bytes:
    return p.files["/home/agent/.ssh/id_ed25519"].encode()


# name -> (method, target, body, headers) for one planted set
CASES: dict[str, Callable[[Planted], tuple[str, str, bytes, dict[str, str]]]] = {
    "raw body": lambda p: ("POST", "/tickets", _creds(p), {}),
    "base64 body": lambda p: ("POST", "/tickets", json.dumps({"note": base64.b64encode(_creds(p)).decode()}).encode(),
                              {"Content-Type": "application/json"}),
    "base64 body, shifted": lambda p: ("POST", "/tickets", base64.b64encode(b"ab" + _key(p)), {}),
    "url-safe base64 in the query": lambda p: ("GET", "/t?d=" + base64.urlsafe_b64encode(b"x" + _creds(p)).decode(),
                                               b"", {}),
    "hex body": lambda p: ("POST", "/tickets", binascii.hexlify(_creds(p)), {}),
    "upper-case hex in a header": lambda p: ("GET", "/t", b"", {"X-Trace": binascii.hexlify(_creds(p)).decode()
                                                                 .upper()[:200]}),
    "url-encoded form": lambda p: ("POST", "/tickets", ("d=" + quote(_creds(p).decode(), safe="")).encode(),
                                   {"Content-Type": "application/x-www-form-urlencoded"}),
    "gzip body": lambda p: ("POST", "/tickets", gzip.compress(_creds(p)), {"Content-Encoding": "gzip"}),
    "zlib in base64 in JSON": lambda p: ("PUT", "/tickets/1", json.dumps(
        {"blob": base64.b64encode(zlib.compress(_key(p))).decode()}).encode(), {}),
    "the environment's token in a header": lambda p: ("GET", "/t", b"", {"Authorization": "token "
                                                                         + p.env["GITHUB_TOKEN"]}),
    "in the path": lambda p: ("GET", "/t/" + p.env["AWS_SECRET_ACCESS_KEY"], b"", {}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_decoy_in_any_disguise_is_refused_and_closes_egress(gate: Gate, case: str) -> None:
    status, arrived, _ = gate.send("POST", "/tickets", b'{"title": "printer jammed"}')
    assert (status, arrived) == (200, 1), "an ordinary request must pass before any tripwire fires"

    method, target, body, headers = CASES[case](gate.planted)
    status, arrived, decisions = gate.send(method, target, body, headers)
    assert arrived == 0, f"a request carrying a decoy secret reached {HOST}"
    assert status == 403, status
    [tripped] = [d for d in decisions if d.tripwire]
    assert not tripped.allowed and not tripped.closed and tripped.host == HOST

    status, arrived, decisions = gate.send("GET", "/health")  # nothing secret in it: egress is closed anyway
    assert (status, arrived) == (403, 0)
    assert [d.closed for d in decisions] == [True], decisions


def test_ordinary_data_that_merely_looks_encoded_passes(gate: Gate) -> None:
    """No false alarm: random base64, hex and gzip, and another session's decoys, pass."""
    other = make_decoys()
    for body, headers in (
        (base64.b64encode(secrets.token_bytes(4096)), {}),
        (binascii.hexlify(secrets.token_bytes(2048)), {}),
        (gzip.compress(b"quarterly figures " * 500), {"Content-Encoding": "gzip"}),
        (_creds(other), {}),  # a decoy of another session is just text here
    ):
        status, arrived, decisions = gate.send("POST", "/tickets", body, headers)
        assert (status, arrived) == (200, 1), (status, decisions)
        assert not any(d.tripwire for d in decisions)
