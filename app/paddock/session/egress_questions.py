"""Egress the grants do not cover, turned into a question a person can answer.

Only where policy allows asking (``egress.allow_asking``, managed). The gateway
refuses the request as always; when the refusal is "no grant for this host",
the app asks once per host and session, in plain words. A yes becomes a grant
for this session only (any method and path on that host and port, no
credential attached), which the gateway reads on the next request; a no is
remembered so the same host is not asked about again. Hosts must be DNS names
(IP addresses are never asked about), and the gateway's other checks (private
addresses, credentials stripped, Host/SNI) still apply to a granted host.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from paddock.egress import Decision, EgressGateway
from paddock.policy import EgressGrant
from paddock.session.auditing import SessionAuditor


@dataclass(frozen=True)
class EgressQuestion:
    id: str
    host: str
    port: int
    scheme: str
    text: str


class EgressAsker:
    """Watches the gateway's refusals and asks about hosts no grant covers."""

    def __init__(self, gateway: EgressGateway, emit: Callable[[Any], None], auditor: SessionAuditor) -> None:
        self.gateway = gateway
        self._emit = emit
        self._auditor = auditor
        self._pending: dict[str, EgressQuestion] = {}
        self._decided: set[tuple[str, int]] = set()
        self.asked = 0
        # Each decision as the gateway pushes it (the auditor records the same one).
        gateway.decided.connect(self._on_decision)

    def _on_decision(self, d: Decision) -> None:
        if d.allowed or not d.no_grant:
            return
        scheme = "https" if d.method == "CONNECT" else d.scheme
        port = d.port or (443 if scheme == "https" else 80)
        key = (d.host, port)
        if key in self._decided or any((q.host, q.port) == key for q in self._pending.values()):
            return
        try:
            EgressGrant(id="session-check", host=d.host, port=port)
        except ValidationError:
            return  # not a plain DNS name (an IP address, say): never asked about
        where = d.host if port in (80, 443) else f"{d.host} (port {port})"
        question = EgressQuestion(
            secrets.token_hex(4),
            d.host,
            port,
            scheme,
            f"The assistant wants to exchange data with {where} on the internet. Allow this for this session only?",
        )
        self._pending[question.id] = question
        self.asked += 1
        self._emit(question)

    async def answer(self, question_id: str, allow: bool) -> None:
        """The person's answer (the window)."""
        self.settle(question_id, allow, "the person answered " + ("yes" if allow else "no"))

    def settle(self, question_id: str, allow: bool, why: str) -> None:
        """Answer a question (``why`` is recorded): yes adds a grant for this session only."""
        question = self._pending.pop(question_id, None)
        if question is None:
            return
        self._decided.add((question.host, question.port))
        subject = f"egress to {question.host}:{question.port} for this session"
        if allow:
            grant = EgressGrant(
                id=f"session-{question.id}",
                scheme="https" if question.scheme == "https" else "http",
                host=question.host,
                port=question.port,
                methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            )
            self.gateway.add_session_grant(grant)
        self._auditor.policy_decision(subject, allow, why, "session")
