"""The audit trail: a hash-chained local log per user, exported over OTLP where policy says."""

from paddock.audit.log import AuditError, AuditLog, VerifyResult
from paddock.audit.trail import (
    EGRESS_DECISION,
    FILE_REMOVED,
    FILE_WRITTEN,
    POLICY_DECISION,
    PROCESS_EXITED,
    PROCESS_STARTED,
    RESTORE_POINT,
    SENSITIVE_READ,
    SESSION_ENDED,
    SESSION_STARTED,
    TAINTED,
    TOKEN_MINTED,
    TOKEN_REVOKED,
    TOOL_CALL,
    TOOL_RESULT,
    TRIPWIRE,
    TURN,
    UNDONE,
    AuditEvent,
    AuditTrail,
    Exporter,
    new_span_id,
    new_trace_id,
)

__all__ = [
    "EGRESS_DECISION",
    "FILE_REMOVED",
    "FILE_WRITTEN",
    "POLICY_DECISION",
    "PROCESS_EXITED",
    "PROCESS_STARTED",
    "RESTORE_POINT",
    "SENSITIVE_READ",
    "SESSION_ENDED",
    "SESSION_STARTED",
    "TAINTED",
    "TOKEN_MINTED",
    "TOKEN_REVOKED",
    "TOOL_CALL",
    "TOOL_RESULT",
    "TRIPWIRE",
    "TURN",
    "UNDONE",
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "AuditTrail",
    "Exporter",
    "VerifyResult",
    "new_span_id",
    "new_trace_id",
]


def otlp_exporter(endpoint: str, headers: dict[str, str] | None = None) -> Exporter:
    """The OTLP exporter (imported lazily: the OpenTelemetry SDK is only loaded when used)."""
    from paddock.audit.otlp import OtlpExporter

    return OtlpExporter(endpoint, headers)
