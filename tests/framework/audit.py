"""Reading the audit log a test's sessions left (the real log on disk, hash chain and all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paddock.audit import AuditLog


def records(data: Path) -> list[dict[str, Any]]:
    """Every record of the audit log under the app data folder ``data``, oldest first."""
    return list(AuditLog(data / "audit").records())


def kinds(data: Path) -> list[str]:
    return [str(r["kind"]) for r in records(data)]


def sessions(data: Path) -> dict[str, list[dict[str, Any]]]:
    """The audit log's records, by session."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in records(data):
        out.setdefault(str(rec["session_id"]), []).append(rec)
    return out


def assert_linked_trail(trail: list[dict[str, Any]], *, process: bool = True) -> None:
    """One session's records: started first, ended last, the folder decision allowed, every
    record hanging off a record of the same session (and, with ``process``, a guest process)."""
    names = [r["kind"] for r in trail]
    assert names[0] == "session.started" and names[-1] == "session.ended", names
    decision = next(r for r in trail if r["kind"] == "policy.decision")
    assert decision["attributes"]["paddock.policy.allowed"] is True
    assert decision["parent_span_id"] == trail[0]["span_id"]
    spans = {r["span_id"] for r in trail}
    for r in trail[1:]:
        assert r["parent_span_id"] in spans, f"{r['kind']} is not linked into the session"
    if process:
        assert "guest.process.started" in names and "guest.process.exited" in names, names
