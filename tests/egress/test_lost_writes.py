"""No write is lost when two processes write one file, and no decision is lost when it is read
half-written (issue 30).

Before #30: "revoke all session tokens" rewrote the revocation file without a lock while every
session's end rewrote it too, so a revocation could be undone; and a decision line the gateway was
still writing was counted as read and lost (never audited, never asked about), its exception ending
the session's poller.

Real: the token authority's files, two processes; the gateway's decision file as the gateway
writes it; the session's auditor and its poller. No fakes.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from pathlib import Path

from paddock.egress.gateway import EgressGateway
from paddock.egress.tokens import TokenAuthority, TokenError


def _session_ends(folder: str, stop: multiprocessing.synchronize.Event) -> None:
    tokens = TokenAuthority(Path(folder))
    i = 0
    while not stop.is_set():  # sessions ending one after another, each revoking its own token
        tokens.revoke(f"t{i}")
        i += 1


def test_revoke_all_is_never_undone_by_a_session_ending(tmp_path: Path) -> None:
    folder = tmp_path / "tokens"
    tokens = TokenAuthority(folder)
    tokens.revoke("first")
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    other = ctx.Process(target=_session_ends, args=(str(folder), stop))
    other.start()
    try:
        time.sleep(1.0)  # the other process is started and revoking
        survived = 0
        for _ in range(60):
            token = tokens.mint("vm1", [])
            tokens.revoke_all()
            time.sleep(0.01)  # the session ends go on meanwhile
            try:
                tokens.check(token.value, vm_id="vm1")
                survived += 1
            except TokenError:
                pass
    finally:
        stop.set()
        other.join(30)
    assert survived == 0, f"{survived} of 60 revocations were undone by a session's end"
    assert "first" in json.loads((folder / "revoked.json").read_text())["ids"]


def _decision(host: str) -> bytes:
    record = {"time_unix": time.time(), "allowed": False, "reason": "no grant", "grant": None, "no_grant": True,
              "method": "GET", "scheme": "https", "host": host, "port": 443, "path": "/"}  # fmt: skip
    return (json.dumps(record) + "\n").encode()


def test_a_half_written_decision_line_is_read_once_it_is_whole(tmp_path: Path) -> None:
    gateway = EgressGateway(tmp_path, "vm1", [], {})
    path = tmp_path / "egress-decisions.jsonl"
    first, second = _decision("a.example"), _decision("b.example")
    with open(path, "ab", buffering=0) as fh:
        fh.write(first + second[:25])  # the gateway is in the middle of writing the second line
        assert [d.host for d in gateway.decisions()] == ["a.example"]
        fh.write(second[25:])
        assert [d.host for d in gateway.decisions()] == ["b.example"]  # not lost
        fh.write(b"not a decision\n" + _decision("c.example"))
        assert [d.host for d in gateway.decisions()] == ["c.example"]  # a bad line is passed over


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def test_the_poller_survives_what_it_reads(tmp_path: Path) -> None:
    from paddock.audit import AuditLog, AuditTrail
    from paddock.session.auditing import SessionAuditor

    gateway = EgressGateway(tmp_path, "vm1", [], {})
    path = tmp_path / "egress-decisions.jsonl"
    trail = AuditTrail(AuditLog(tmp_path / "audit", key=b"k" * 32), None)
    auditor = SessionAuditor(trail, tmp_path, entry="test")
    seen: list[str] = []

    def broken_listener(d: object) -> None:
        raise RuntimeError("a listener's bug")

    gateway.decision_listeners += [broken_listener, lambda d: seen.append(d.host)]

    class Box:  # what the auditor follows: the real gateway, no guest events
        def __init__(self) -> None:
            self.gateway = gateway
            self.guest = self
            self.token = None
            self.exec_listeners: list[object] = []
            self.close_listeners: list[object] = []

        async def events(self):  # type: ignore[no-untyped-def]
            await asyncio.sleep(3600)
            yield None

    async def run() -> None:
        auditor.follow(Box())  # type: ignore[arg-type]
        path.write_bytes(_decision("a.example") + b"{half")
        await asyncio.sleep(1.2)
        _append(path, b'":1}\n' + _decision("b.example"))
        await asyncio.sleep(1.2)
        await auditor.close()

    asyncio.run(run())
    assert seen == ["a.example", "b.example"]
    hosts = [r["attributes"].get("server.address") for r in trail.log.records() if r["kind"] == "egress.decision"]
    assert hosts == ["a.example", "b.example"]
