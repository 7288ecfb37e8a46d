"""The gateway pushes what happens to the host over its channel (#31): no file is re-read on a timer.

Real: the gateway process (mitmproxy, Paddock's rules) with a loopback upstream, and the channel's
two ends as the gateway and the host use them. Nothing here waits a fixed time: each test waits for
the event it expects, with a generous limit that only a broken build reaches.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddock.core.engine import Engine
from paddock.egress import Decision, EgressGateway, Question, TokenAuthority, gateway
from paddock.egress.channel import Alert, GatewaySide, Ready, decode, encode
from paddock.policy import EgressGrant
from tests.egress.raw import status_of, through_tunnel
from tests.egress.upstream import Upstream

HOST = "channel.example.test"
GRANTS = [EgressGrant(id="open", host=HOST, methods=["POST"], path_pattern="/open/*")]
WAIT_S = 60.0  # a limit for a broken build, never a measure of speed


def _post(path: str) -> bytes:
    body = b"{}"
    head = f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    up = Upstream(tmp_path, HOST)
    gateway.LOOPBACK_UPSTREAMS[HOST] = f"127.0.0.1:{up.port}"
    gateway.UPSTREAM_CA = up.ca
    try:
        yield up
    finally:
        gateway.LOOPBACK_UPSTREAMS.clear()
        gateway.UPSTREAM_CA = None
        up.close()


def test_a_decision_reaches_the_host_as_it_is_made(engine: Engine, upstream: Upstream, tmp_path: Path) -> None:
    """Nobody reads or polls anything: the decision arrives on the gateway's channel and the host's
    signal fires. (Before #31 a decision reached listeners only when someone re-read the file.)"""
    gw = EgressGateway(tmp_path / "gw", "vmchannel", GRANTS, {})
    engine.run(gw.start(), timeout=120)
    try:
        token = TokenAuthority().mint("vmchannel", ["open"]).value
        arrived = threading.Event()
        seen: list[Decision] = []

        def on_decision(d: Decision) -> None:
            seen.append(d)
            if d.allowed:
                arrived.set()

        gw.decided.connect(on_decision)
        ca = gw.confdir / "mitmproxy-ca-cert.pem"
        assert status_of(through_tunnel(gw.port, token, ca, HOST, _post("/open/x"))) == 200
        assert arrived.wait(WAIT_S), "the allowed request's decision never arrived"
        allowed = [d for d in seen if d.allowed]
        assert [(d.grant, d.method, d.host, d.path) for d in allowed] == [("open", "POST", HOST, "/open/x")]
    finally:
        engine.run(gw.stop(), timeout=60)


def test_the_gateway_refuses_when_its_channel_to_the_host_is_gone(
    engine: Engine, upstream: Upstream, tmp_path: Path
) -> None:
    """Fail closed: when the host's end of the channel goes away (the app crashed, say), no decision
    could be recorded, so the gateway stops and nothing more reaches the upstream. Before #31 the
    gateway went on serving, writing decisions to a file nobody read."""
    gw = EgressGateway(tmp_path / "gw", "vmgone", GRANTS, {})
    engine.run(gw.start(), timeout=120)
    proc = gw._proc
    assert proc is not None
    try:
        token = TokenAuthority().mint("vmgone", ["open"]).value
        ca = gw.confdir / "mitmproxy-ca-cert.pem"
        assert status_of(through_tunnel(gw.port, token, ca, HOST, _post("/open/before"))) == 200
        before = len(upstream.hits)
        gw._stopping = True  # the host's side is gone: no crash handling of its own
        assert gw._writer is not None
        engine.run(_close(gw._writer), timeout=30)
        code = engine.run(asyncio.wait_for(proc.wait(), WAIT_S), timeout=WAIT_S + 10)
        assert code is not None, "the gateway kept running without its channel to the host"
        try:
            reply = through_tunnel(gw.port, token, ca, HOST, _post("/open/after"), timeout=10)
        except OSError:
            reply = b""
        assert status_of(reply) != 200, reply
        assert len(upstream.hits) == before, "a request reached the upstream after the channel was gone"
    finally:
        engine.run(gw.stop(), timeout=60)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()


def test_events_arrive_whole_and_in_order_and_a_bad_line_or_listener_loses_nothing(tmp_path: Path) -> None:
    """The host's reader takes a decision only once its line is whole, passes over a line that is
    no event, and one listener's bug does not keep a decision from the others (each was a way to
    lose a decision when they were read from a file, #30)."""
    host = EgressGateway(tmp_path, "vm1", [], {})
    seen: list[str] = []
    questions: list[Question] = []
    alerts: list[Alert] = []

    def broken(_d: Decision) -> None:
        raise RuntimeError("a listener's bug")

    host.decided.connect(broken)
    host.decided.connect(lambda d: seen.append(d.host))
    host.questions.connect(questions.append)
    host.alerts.connect(alerts.append)

    def decision(name: str) -> bytes:
        return encode(Decision(False, "no grant", None, "GET", name, "/", 443, "https", True, time.time()))

    async def run() -> None:
        ours, theirs = socket.socketpair()
        reader, host._writer = await asyncio.open_unix_connection(sock=ours)
        follow = asyncio.ensure_future(host._follow(reader, None))
        second = decision("b.example")
        theirs.sendall(decision("a.example") + second[:25])  # the gateway is in the middle of a line
        theirs.sendall(second[25:] + b"not a gateway event\n" + decision("c.example"))
        theirs.sendall(encode(Question("q1", "held-request", "May it?", "POST", "x.example", 443, "/up")))
        theirs.sendall(encode(Alert("tripwire", "a canary was read")))
        theirs.close()  # the gateway's end closes: the reader ends after handing on the rest
        await asyncio.wait_for(follow, WAIT_S)

    asyncio.run(run())
    assert seen == ["a.example", "b.example", "c.example", ""]  # the last: the gateway's end went away
    assert [q.id for q in questions] == ["q1"] and [a.kind for a in alerts] == ["tripwire"]
    assert [d.host for d in host.decisions()] == ["a.example", "b.example", "c.example", ""]
    assert host.decisions() == []  # read once


def test_a_question_is_answered_over_the_channel_and_a_broken_channel_answers_no(tmp_path: Path) -> None:
    """The gateway's side asks, the host answers through ``EgressGateway.answer``; a ping is a
    barrier behind everything sent before it; a question open when the channel breaks is a no."""
    host = EgressGateway(tmp_path, "vm1", [], {})

    def answer(q: Question) -> None:
        host.answer(q.id, q.host == "yes.example")

    host.questions.connect(answer)

    async def run() -> tuple[bool, bool, bool, list[str]]:
        ours, theirs = socket.socketpair()
        closed = asyncio.Event()
        side = GatewaySide(theirs, closed=closed.set)
        side.attach(asyncio.get_running_loop())
        reader, host._writer = await asyncio.open_unix_connection(sock=ours)
        follow = asyncio.ensure_future(host._follow(reader, None))
        yes = await asyncio.wait_for(side.ask(Question("1", "held-request", "?", host="yes.example")), WAIT_S)
        no = await asyncio.wait_for(side.ask(Question("2", "held-request", "?", host="no.example")), WAIT_S)
        side.send(Decision(True, "granted", "g", "GET", "d.example", "/"))
        alive = host.alive
        host.alive = lambda: True  # type: ignore[method-assign]  # no process here: the channel is the gateway
        await asyncio.wait_for(host.settle(), WAIT_S)
        settled = [d.host for d in host.decisions()]
        host.alive = alive  # type: ignore[method-assign]
        host.questions.disconnect(answer)  # nobody answers the next one
        pending = side.ask(Question("3", "held-request", "?", host="yes.example"))
        host._writer_close()  # the host goes away
        unanswered = await asyncio.wait_for(pending, WAIT_S)
        await asyncio.wait_for(closed.wait(), WAIT_S)
        await asyncio.wait_for(follow, WAIT_S)
        return yes, no, unanswered, settled

    yes, no, unanswered, settled = asyncio.run(run())
    assert (yes, no, unanswered) == (True, False, False)
    assert settled == ["d.example"]


def test_messages_round_trip_and_nonsense_is_refused() -> None:
    ready = Ready(3128)
    assert decode(encode(ready)) == ready
    line = encode(Decision(True, "granted", "g", "GET", "h", "/p", 443, "https", False, 1.0))
    assert json.loads(line)["type"] == "decision"
    for bad in (b"{}", b"[]", b'{"type": "shell", "cmd": "x"}', b'{"type": "ready"}', b"x" * 70_000, b"\xff"):
        with pytest.raises(ValueError):
            decode(bad)
