"""Egress that no grant covers becomes a question, only where policy allows asking.

Real VM, real mitmproxy gateway, and a local HTTPS server standing in for a site on the
internet (``charts.example.test``; the gateway reaches it through the host test process's
``paddock.egress.gateway.LOOPBACK_UPSTREAMS``, set in-process). "Refused" is proven by the upstream's hit count.
The model is not involved: the guest command is run directly through the open session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from paddock.core.engine import Engine
from paddock.desk.desk import Desk, DeskEvent, SandboxState
from paddock.egress import gateway
from paddock.policy import EffectivePolicy
from paddock.session.egress_questions import EgressQuestion
from tests.egress.test_egress import CLIENT
from tests.egress.upstream import Upstream

pytestmark = pytest.mark.vm

HOST = "charts.example.test"


def _request(engine: Engine, desk: Desk, url: str) -> str:
    sandbox = desk._open.sandbox if desk._open else None
    assert sandbox is not None
    out, err, _ = engine.run(sandbox.guest.run(["python3", ".client.py", "POST", url], timeout_s=60), timeout=120)
    return (out + err).decode(errors="replace")


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("allow_asking", [True, False])
def test_an_ungranted_host_becomes_a_question_and_yes_is_a_session_grant(
    engine: Engine, guest_image: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_asking: bool
) -> None:
    upstream = Upstream(tmp_path, HOST)
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / ".client.py").write_text(CLIENT)
    monkeypatch.setitem(gateway.LOOPBACK_UPSTREAMS, HOST, f"127.0.0.1:{upstream.port}")
    monkeypatch.setattr(gateway, "UPSTREAM_CA", upstream.ca)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-unused")
    events: list[DeskEvent] = []
    desk = Desk(policy_loader=lambda **_: EffectivePolicy(allow_asking=allow_asking))
    desk.subscribe(events.append)
    try:
        engine.run(desk.trust(folder), timeout=10)
        engine.run(desk.open(folder), timeout=180)
        assert desk.sandbox_state is SandboxState.READY
        url = f"https://{HOST}/upload"

        first = _request(engine, desk, url)
        assert upstream.hits == [], "a request no grant covers reached the site"
        if not allow_asking:
            assert "STATUS 200" not in first, first
            assert desk._open is not None and desk._open.sandbox is not None
            assert desk._open.sandbox.gateway is None  # no grants, no asking: no way out at all, no proxy
            time.sleep(1.0)
            assert not any(isinstance(e, EgressQuestion) for e in events)
            return
        assert "STATUS 403" in first, first

        _wait(lambda: any(isinstance(e, EgressQuestion) for e in events))
        [question] = [e for e in events if isinstance(e, EgressQuestion)]
        assert question.host == HOST and "this session only" in question.text
        _request(engine, desk, url)  # asked once per host, however often it is tried
        time.sleep(1.0)  # time for a second question to arrive, if one were asked
        assert sum(isinstance(e, EgressQuestion) for e in events) == 1
        assert upstream.hits == []

        engine.run(desk.answer(question.id, True), timeout=10)
        second = _request(engine, desk, url)
        assert "STATUS 200" in second, second
        assert [h["path"] for h in upstream.hits] == ["/upload"]

        summary = engine.run(desk.finish(), timeout=60)
        assert summary.questions_asked == 1
        # The grant was for that session only: a new session is refused again, and asks again.
        events.clear()
        engine.run(desk.open(folder), timeout=180)
        assert "STATUS 403" in _request(engine, desk, url)
        assert len(upstream.hits) == 1
        _wait(lambda: any(isinstance(e, EgressQuestion) for e in events))
        [again] = [e for e in events if isinstance(e, EgressQuestion)]
        engine.run(desk.answer(again.id, False), timeout=10)
        assert "STATUS 403" in _request(engine, desk, url)
        assert len(upstream.hits) == 1
    finally:
        engine.run(desk.close(), timeout=60)  # the session if one is open, and the woken sandbox after it
        upstream.close()
