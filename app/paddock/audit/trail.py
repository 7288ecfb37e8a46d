"""One event model for the audit trail, recorded locally first and exported over OTLP.

Every event links upward: a guest process names the tool call that started
it, the tool call its turn, the turn its session. Identifiers are OpenTelemetry
trace and span ids, so the same links hold in the admin's collector: the
session is the trace, and turns and tool calls are spans. Attribute names follow
OpenTelemetry's semantic conventions where one exists (``process.*``,
``file.*``, ``http.*``, ``gen_ai.*``); Paddock's own are under ``paddock.*``.

The local log is written synchronously, before anything is exported; the
export runs in the SDK's background processors, so a collector that is down
never blocks the session and never costs a local record.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from paddock.audit.log import AuditLog

# The kinds of event. Names are stable: admins filter on them.
SESSION_STARTED = "session.started"
SESSION_ENDED = "session.ended"
TURN = "turn"
TOOL_CALL = "tool.call"
TOOL_RESULT = "tool.result"
PROCESS_STARTED = "guest.process.started"
PROCESS_EXITED = "guest.process.exited"
FILE_WRITTEN = "guest.file.written"
FILE_REMOVED = "guest.file.removed"
EGRESS_DECISION = "egress.decision"
SENSITIVE_READ = "guest.file.sensitive_read"  # seen by the change guard (#32)
TAINTED = "session.tainted"  # the first sensitive read: data-carrying egress is held from now on
TRIPWIRE = "egress.tripwire"  # a decoy secret was sent out (high severity: exported at once)
TOKEN_MINTED = "token.minted"
TOKEN_REVOKED = "token.revoked"
POLICY_DECISION = "policy.decision"
RESTORE_POINT = "undo.point"
UNDONE = "undo.restored"


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


@dataclass
class AuditEvent:
    kind: str
    session_id: str  # the OTel trace id of the session
    span_id: str = field(default_factory=new_span_id)
    parent_span_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    time_unix: float = field(default_factory=time.time)

    def as_record(self) -> dict[str, Any]:
        return {
            "time_unix": self.time_unix,
            "kind": self.kind,
            "session_id": self.session_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "attributes": self.attributes,
        }


# Kinds the security team must see at once: exported with a high severity and flushed.
HIGH_SEVERITY = frozenset({TRIPWIRE})


class Exporter:
    """Where records go after the local log (OTLP in production; nothing by default)."""

    def export(self, record: dict[str, Any]) -> None:  # pragma: no cover - interface
        pass

    def flush(self) -> None:
        """Send what is queued now (after a high-severity record)."""

    def shutdown(self) -> None:
        pass


class AuditTrail:
    def __init__(self, log: AuditLog | None = None, exporter: Exporter | None = None) -> None:
        self.log = log or AuditLog()
        self.exporter = exporter or Exporter()

    def record(self, event: AuditEvent) -> dict[str, Any]:
        written = self.log.append(event.as_record())
        try:
            self.exporter.export(written)
            if event.kind in HIGH_SEVERITY:
                self.exporter.flush()
        except Exception:  # noqa: BLE001 - export must never cost the session or the local record
            pass
        return written

    def close(self) -> None:
        self.exporter.shutdown()
