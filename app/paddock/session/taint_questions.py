"""Requests held after a sensitive read (``paddock.egress.taint``), turned into one plain question.

The gateway refuses a held request at once (the guest's program sees a refusal that says why);
this asker puts one question to the person per held request: "The assistant opened
salaries.xlsx and now wants to send data to tickets.example.com. Allow this once?". A yes lets the
next identical request (method, host, path) through once; a no is remembered for that host, so
the session is not asked about it again. Where policy says ``sensitive.on_send: refuse`` nothing
is asked: held requests stay refused. Counted like every other egress question.

The decisions reach here as the gateway pushes them (``EgressGateway.decided``, over the
gateway's channel); the questions go out through the same ``emit`` as the other egress questions
(``EgressQuestion``).
"""

from __future__ import annotations

import posixpath
import secrets
from collections.abc import Callable
from typing import Any

from paddock.egress import UNWATCHED, Decision, EgressGateway
from paddock.session.auditing import SessionAuditor
from paddock.session.egress_alerts import on_tripwire
from paddock.session.egress_questions import EgressQuestion


class TaintAsker:
    def __init__(
        self, gateway: EgressGateway, emit: Callable[[Any], None], auditor: SessionAuditor, *,
        alert: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        """``alert``: told in one sentence when a tripwire fires (``egress_alerts``)."""
        self.gateway = gateway
        self._emit = emit
        self._auditor = auditor
        self._pending: dict[str, tuple[EgressQuestion, Decision]] = {}
        self._refused_hosts: set[str] = set()
        self.asked = 0
        gateway.decided.connect(self._on_decision)
        if alert is not None:
            gateway.decided.connect(on_tripwire(alert))

    def owns(self, question_id: str) -> bool:
        return question_id in self._pending

    def _on_decision(self, d: Decision) -> None:
        if not d.held or self.gateway.taint_mode != "ask" or d.host in self._refused_hosts:
            return
        if any((p.method, p.host, p.path) == (d.method, d.host, d.path) for _q, p in self._pending.values()):
            return
        name = posixpath.basename(d.taint_path) or d.taint_path or "a sensitive file"
        text = f"The assistant opened {name} and now wants to send data to {d.host}. Allow this once?"
        if d.taint == UNWATCHED["id"]:
            text = (f"The assistant works on a sandbox host, where Paddock cannot see which files it opens, "
                    f"and now wants to send data to {d.host}. Allow this once?")  # fmt: skip
        question = EgressQuestion(secrets.token_hex(4), d.host, d.port, d.scheme, text)
        self._pending[question.id] = (question, d)
        self.asked += 1
        self._emit(question)

    async def answer(self, question_id: str, allow: bool) -> None:
        """The person's answer (the window)."""
        self.settle(question_id, allow, "the person answered " + ("yes, once" if allow else "no"))

    def settle(self, question_id: str, allow: bool, why: str) -> None:
        """Answer a held request (``why`` is recorded): yes lets the same request through once."""
        entry = self._pending.pop(question_id, None)
        if entry is None:
            return
        _question, d = entry
        if allow:
            self.gateway.allow_once(f"once-{question_id}", d.method, d.host, d.path)
        else:
            self._refused_hosts.add(d.host)
        subject = f"sending data to {d.host} ({d.method} {d.path}) after reading {d.taint_path}"
        self._auditor.policy_decision(subject, allow, why, "session")
