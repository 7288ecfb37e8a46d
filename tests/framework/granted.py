"""A folder opened in the window (a real ``Desk``, VM and gateway) with one granted host that is
really a local HTTPS server recording every request (``tests.egress.upstream``): what the taint
and tripwire tests (``tests/security/test_taint.py``, ``test_tripwires.py``) share. "Held" or
"refused" is proven by what arrived there. No model: the injected instruction is played by guest
commands (``GrantedDesk.run``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from paddock.core.engine import Engine
from paddock.desk.desk import Desk, DeskEvent, SandboxState
from paddock.egress import gateway
from paddock.policy import EffectivePolicy
from paddock.sandbox import Sandbox
from tests.egress.upstream import Upstream

# Runs in the guest: POST (or GET) through the session's proxy; prints "STATUS <code> …" or "ERROR …".
# argv: method, url, then the file whose bytes are the body (none: no body).
SEND = r"""
import os, sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
body = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else None
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"https": os.environ["HTTPS_PROXY"]}))
try:
    print("STATUS", opener.open(urllib.request.Request(url, data=body, method=method), timeout=30).status)
except urllib.error.HTTPError as e:
    print("STATUS", e.code, e.read()[:300])
except Exception as e:
    print("ERROR", type(e).__name__, str(e)[:200])
"""


@dataclass
class GrantedDesk:
    engine: Engine
    desk: Desk
    sandbox: Sandbox
    events: list[DeskEvent]
    upstream: Upstream

    def run(self, argv: list[str]) -> str:
        """A guest command's stdout and stderr."""
        out, err, _ = self.engine.run(self.sandbox.guest.run(argv, timeout_s=60), timeout=120)
        return (out + err).decode(errors="replace")


@contextlib.contextmanager
def granted_desk(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    upstream_dir: Path,
    host: str,
    folder: Path,
    policy: EffectivePolicy,
) -> Iterator[GrantedDesk]:
    """``folder`` trusted and opened under ``policy``, its sandbox ready; ``host`` (which the
    policy grants) served by a local upstream; at the end the session is finished and the window
    closed (``Desk.close``: ``finish`` alone leaves the pool waking the next folder's sandbox)."""
    upstream = Upstream(upstream_dir, host)
    monkeypatch.setitem(gateway.LOOPBACK_UPSTREAMS, host, f"127.0.0.1:{upstream.port}")
    monkeypatch.setattr(gateway, "UPSTREAM_CA", upstream.ca)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-unused")
    events: list[DeskEvent] = []
    desk = Desk(policy_loader=lambda **_: policy)
    desk.subscribe(events.append)
    try:
        engine.run(desk.trust(folder), timeout=10)
        engine.run(desk.open(folder), timeout=180)
        assert desk.sandbox_state is SandboxState.READY
        assert desk._open is not None and desk._open.sandbox is not None
        yield GrantedDesk(engine, desk, desk._open.sandbox, events, upstream)
    finally:
        engine.run(desk.close(), timeout=90)  # the session, and the next folder's woken sandbox
        upstream.close()
