"""Turns a session's events and the guest's live event stream into linked audit records.

    session (trace) ─► turn (span) ─► tool call (span) ─► guest process / file write
                                                      └► tool result

Guest events and egress decisions are recorded as they arrive (the sandbox's guest event stream,
the gateway's channel), not at the end of the session and never by polling.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from paddock.assistant.loop import AssistantEvent, Cancelled, Failed, Finished, ToolCalled, ToolFinished, TurnStarted
from paddock.audit import (
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
    new_span_id,
    new_trace_id,
)
from paddock.core.signal import Signal
from paddock.core.text import shown
from paddock.egress import UNWATCHED, Decision
from paddock.guest import FileChangedEvent, GuestEvent, ProcessExitedEvent, ProcessStartedEvent
from paddock.sandbox import Sandbox
from paddock.sandbox.sensitive import SensitiveRead

log = logging.getLogger(__name__)
INPUT_PREVIEW = 2000


class SessionAuditor:
    def __init__(self, trail: AuditTrail, folder: Path, *, model: str = "", entry: str = "") -> None:
        self.trail = trail
        self.session_id = new_trace_id()
        self.session_span = new_span_id()
        self._turn_span: str | None = None
        self._tool_span: str | None = None
        self._tool_spans: dict[str, str] = {}
        self._exec_parent: dict[str, str] = {}
        self._sandbox: Sandbox | None = None
        self._ended = False
        self._taint_span: str | None = None  # the session's taint (after its first sensitive read)
        self._read_spans: dict[str, str] = {}  # sensitive read id -> its record's span
        self.guest_events: Signal[GuestEvent] = Signal("guest event, audited")  # the window's activity panel
        self._emit(SESSION_STARTED, None, {"paddock.folder": str(folder), "gen_ai.request.model": model,
                                           "paddock.entry": entry}, span=self.session_span)  # fmt: skip

    def _emit(self, kind: str, parent: str | None, attributes: dict[str, Any], *, span: str | None = None) -> str:
        event = AuditEvent(kind, self.session_id, span or new_span_id(), parent, attributes)
        self.trail.record(event)
        return event.span_id

    # ------------------------------------------------------------------ session events

    def on_agent_event(self, ev: AssistantEvent) -> None:
        if isinstance(ev, TurnStarted):
            self._turn_span = self._emit(TURN, self.session_span, {"paddock.turn": ev.turn})
        elif isinstance(ev, ToolCalled):
            preview = str(ev.input)[:INPUT_PREVIEW]
            span = self._emit(TOOL_CALL, self._turn_span or self.session_span, {
                "gen_ai.tool.name": ev.name, "gen_ai.tool.call.id": ev.call_id,
                "paddock.tool.summary": ev.summary, "paddock.tool.input": preview})  # fmt: skip
            self._tool_spans[ev.call_id] = span
            self._tool_span = span
        elif isinstance(ev, ToolFinished):
            self._emit(TOOL_RESULT, self._tool_spans.get(ev.call_id), {
                "gen_ai.tool.name": ev.name, "gen_ai.tool.call.id": ev.call_id,
                "paddock.tool.is_error": ev.is_error, "paddock.tool.duration_s": round(ev.duration_s, 4)})  # fmt: skip
        elif isinstance(ev, Finished):
            self._ended = True
            self._emit(SESSION_ENDED, self.session_span, {
                "paddock.outcome": "finished", "paddock.turns": ev.turns,
                "gen_ai.usage.input_tokens": ev.usage.input_tokens,
                "gen_ai.usage.output_tokens": ev.usage.output_tokens})  # fmt: skip
        elif isinstance(ev, Failed):
            self._ended = True
            self._emit(SESSION_ENDED, self.session_span, {"paddock.outcome": "failed", "error.type": ev.message})
        elif isinstance(ev, Cancelled):
            self._ended = True
            self._emit(SESSION_ENDED, self.session_span, {"paddock.outcome": "cancelled"})

    def session_ended(self, outcome: str) -> None:
        """The session's end, unless the assistant loop already recorded how it ended."""
        if not self._ended:
            self._ended = True
            self._emit(SESSION_ENDED, self.session_span, {"paddock.outcome": outcome})

    def on_exec_started(self, exec_id: str) -> None:
        """A command is about to start: its events hang off the tool call running now."""
        if self._tool_span:
            self._exec_parent[exec_id] = self._tool_span

    def policy_decision(self, subject: str, allowed: bool, reason: str, tier: str) -> None:
        self._emit(POLICY_DECISION, self.session_span, {
            "paddock.policy.subject": subject, "paddock.policy.allowed": allowed,
            "paddock.policy.reason": reason, "paddock.policy.tier": tier or "built-in"})  # fmt: skip

    def restore_point(self, attributes: dict[str, Any]) -> None:
        """A restore point was made (``paddock.undo.store``), or could not be."""
        self._emit(RESTORE_POINT, self.session_span, attributes)  # made before the turn it protects starts

    def undone(self, attributes: dict[str, Any]) -> None:
        """The folder (or one file) was put back to a restore point."""
        self._emit(UNDONE, self.session_span, attributes)

    # ------------------------------------------------------------------ guest events

    def on_guest_event(self, ev: GuestEvent) -> None:
        self.guest_events.emit(ev)
        if isinstance(ev, ProcessStartedEvent):
            parent = self._exec_parent.get(ev.exec_id) or self._tool_span or self.session_span
            self._exec_parent[ev.exec_id] = parent
            self._emit(PROCESS_STARTED, parent, {
                "process.pid": ev.pid, "process.command_args": [shown(a) for a in ev.argv],
                "process.working_directory": "/workspace/" + ev.cwd if ev.cwd else "/workspace",
                "paddock.exec_id": ev.exec_id, "paddock.guest.seq": ev.seq})  # fmt: skip
        elif isinstance(ev, ProcessExitedEvent):
            r = ev.result
            self._emit(PROCESS_EXITED, self._exec_parent.get(ev.exec_id) or self._tool_span or self.session_span, {
                "process.pid": ev.pid, "process.exit.code": r.exit_code, "paddock.exit.reason": r.reason.value,
                "paddock.exit.signal": r.signal, "paddock.exec_id": ev.exec_id,
                "paddock.duration_s": round(r.duration_s, 4), "paddock.guest.seq": ev.seq})  # fmt: skip
        elif isinstance(ev, FileChangedEvent) and not ev.writing:  # a write in progress: recorded when done
            parent = self._exec_parent.get(ev.exec_id) or self._tool_span or self.session_span  # the command's call
            self._emit(FILE_REMOVED if ev.removed else FILE_WRITTEN, parent, {
                "file.path": shown(ev.path), "file.size": ev.size, "paddock.guest.seq": ev.seq})  # fmt: skip

    def sensitive_read(self, read: SensitiveRead) -> None:
        """A sensitive file was opened in the folder (seen by the change guard): recorded, and the
        first one taints the session (held requests link to the taint, the taint to the read)."""
        span = self._emit(SENSITIVE_READ, self._tool_span or self.session_span, {
            "file.path": shown(read.path), "paddock.sensitive.why": read.why,
            "paddock.sensitive.first_name": shown(read.first_name), "paddock.sensitive.read_id": read.id})  # fmt: skip
        self._read_spans[read.id] = span
        if self._taint_span is None:
            self._taint_span = self._emit(TAINTED, span, {
                "paddock.sensitive.read_id": read.id, "file.path": shown(read.path)})  # fmt: skip

    def follow(self, sandbox: Sandbox) -> None:
        """Record the guest's events live, for as long as the sandbox runs, and the egress
        gateway's decisions (each as it arrives) and this boot's token."""
        self._sandbox = sandbox
        if sandbox.sensitive is not None:  # told on the change guard's thread: recorded on this loop
            loop = asyncio.get_running_loop()

            def told(read: SensitiveRead) -> None:
                loop.call_soon_threadsafe(self.sensitive_read, read)

            sandbox.sensitive.read_seen.connect(told)
            for read in list(sandbox.sensitive.reads):  # any before the session followed
                self.sensitive_read(read)
        if sandbox.reads_unwatched and self._taint_span is None:  # a sandbox host: tainted from the start
            self._taint_span = self._emit(TAINTED, self.session_span, {
                "paddock.sensitive.read_id": UNWATCHED["id"], "file.path": UNWATCHED["path"],
                "paddock.reason": "on a sandbox host, which files are read is not seen from here"})  # fmt: skip
        sandbox.exec_started.connect(self.on_exec_started)
        sandbox.guest_event.connect(self.on_guest_event)
        if sandbox.gateway is not None:
            sandbox.gateway.decided.connect(self.on_egress_decision)
        if sandbox.token is not None:
            t = sandbox.token
            minted = {
                "paddock.token.id": t.token_id,
                "paddock.vm.id": t.vm_id,
                "paddock.token.expires_unix": t.expires / 1000,
                "paddock.token.grants_hash": t.grants_hash,
            }
            self._emit(TOKEN_MINTED, self.session_span, minted)

            def revoked() -> None:
                self._emit(TOKEN_REVOKED, self.session_span, {"paddock.token.id": t.token_id,
                                                              "paddock.reason": "session ended"})  # fmt: skip

            sandbox.closing.connect(revoked)

    def on_egress_decision(self, d: Decision) -> None:
        held = {"paddock.egress.held": True, "paddock.sensitive.read_id": d.taint,
                "paddock.sensitive.path": shown(d.taint_path)} if d.held else {}  # fmt: skip
        parent = self._taint_span if d.held and self._taint_span else self._tool_span or self.session_span
        span = self._emit(EGRESS_DECISION, parent, {**held,
            "paddock.egress.allowed": d.allowed, "paddock.egress.grant": d.grant or "",
            "paddock.egress.reason": d.reason, "http.request.method": d.method,
            "server.address": d.host, "url.path": d.path,
            **({"paddock.egress.tripwire": d.tripwire} if d.tripwire else {})})  # fmt: skip
        if d.tripwire and not d.closed:  # the security team's live signal (flushed over OTLP at once)
            self._emit(TRIPWIRE, span, {
                "paddock.severity": "high", "paddock.tripwire.decoy": d.tripwire,
                "server.address": d.host, "http.request.method": d.method, "url.path": d.path,
                "paddock.egress.closed": True})  # fmt: skip

    async def close(self) -> None:
        """End the trail, once what the sandbox (still running) has on the wire has arrived."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            await sandbox.settle()
            sandbox.exec_started.disconnect(self.on_exec_started)
            sandbox.guest_event.disconnect(self.on_guest_event)
            if sandbox.gateway is not None:
                sandbox.gateway.decided.disconnect(self.on_egress_decision)
        self.trail.close()
