"""One way in. Every entry point — the window, ``paddock run``, ``paddock mcp``,
``paddock sandbox exec``, ``paddock undo`` and a schedule's run — opens its session here, through the
composer (``paddock.session.composer``, the whole chain written once), so each is decided, fenced and
audited the same way::

    decide(folder) + SessionRunner.begin   load policy (the folder's own tier only if trusted),
        │                                  decide the folder once, start the audit trail and
        │                                  record the decision; a denied folder stops here
        ▼
    runner.boot()                          boot or wake the sandbox with that decision;
        │                                  the auditor follows the guest's events
        ▼
    runner.assistant(provider)             the assistant loop, its events audited
    runner.call_tool(name, args)           or one tool at a time (MCP), each call audited
    runner.sandbox.exec(argv)              or one command (sandbox exec), its process audited
        ▼
    runner.close()                         sandbox stopped, the session's end recorded
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddock.assistant.loop import AssistantSession, ConversationStore, ToolCalled, ToolFinished
from paddock.assistant.tools import TOOLS, ToolBox, ToolOutcome, Where, describe
from paddock.audit import AuditLog, AuditTrail, otlp_exporter
from paddock.core.logs import SessionLog
from paddock.credentials import Keychain, audit_key
from paddock.llm import ModelProvider
from paddock.policy import EffectivePolicy, FolderDecision, PolicyError, TrustStore
from paddock.policy import load as load_policy
from paddock.sandbox import BootRequest, Sandbox, SandboxFailed, WarmPool
from paddock.session.auditing import SessionAuditor
from paddock.session.model_choice import ModelDecision, refused
from paddock.session.undoing import START, TURN, FolderUndo

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
PolicyLoader = Callable[..., EffectivePolicy]


class EntryPoint(enum.Enum):
    """Which door a session came in by (recorded on the session's first audit record)."""

    WINDOW = "window"
    RUN = "run"
    MCP = "mcp"
    EXEC = "sandbox-exec"
    SCHEDULE = "schedule"
    UNDO = "undo"


@dataclass(frozen=True)
class Decided:
    """The folder decided once, with the policy that decided it."""

    folder: Path  # resolved
    decision: FolderDecision
    policy: EffectivePolicy
    trusted: bool


def decide(folder: Path, *, trusted: bool | None = None, policy_loader: PolicyLoader = load_policy) -> Decided:
    """Load the effective policy (the folder's own tier only when the folder is trusted) and
    decide whether the folder may be shared. A policy that cannot be read fails closed."""
    folder = folder.expanduser()
    if trusted is None:
        trusted = folder.is_dir() and TrustStore().is_trusted(folder)
    try:
        policy = policy_loader(folder=folder, folder_trusted=trusted) if folder.is_dir() else policy_loader()
    except PolicyError as exc:
        raise SandboxFailed(f"No session can start: {exc.message}", hint=exc.hint) from exc
    decision = policy.check_folder(folder)
    resolved = decision.folder if decision.folder is not None else folder
    return Decided(resolved, decision, policy, trusted)


def audit_trail(policy: EffectivePolicy) -> AuditTrail:
    """The local log (size from policy) and, where policy names a collector, OTLP export."""
    exporter = otlp_exporter(policy.otlp_endpoint, policy.otlp_headers) if policy.otlp_endpoint else None
    key = audit_key(Keychain(allowed_fallback=policy.keychain_fallback))
    log = AuditLog(max_bytes=policy.max_log_mb * 1024 * 1024, key=key.key)
    if key.replaced:  # the keychain lost the key that signed the log: kept by name, not a false alarm
        log.set_aside("key-lost")
    return AuditTrail(log, exporter)


class SessionRunner:
    def __init__(self, decided: Decided, entry: EntryPoint, *, model: str = "") -> None:
        self.decided = decided
        self.entry = entry
        self.auditor = SessionAuditor(audit_trail(decided.policy), decided.folder, model=model, entry=entry.value)
        self.log = SessionLog(self.session_id)  # for a support request; never a secret in it
        d = decided.decision
        self.auditor.policy_decision(f"share folder {decided.folder}", d.allowed, d.reason, d.tier)
        # Restore points: at the start (each boot) and before each turn, whatever the entry point.
        self.undo = FolderUndo(decided.folder, decided.policy, self.auditor)
        self.sandbox: Sandbox | None = None
        self._box: ToolBox | None = None
        self._closed = False
        log.debug("session %s: %s on %s (%s)", self.session_id, entry.value, decided.folder, d.reason or "allowed")

    @classmethod
    async def begin(
        cls, decided: Decided, entry: EntryPoint, *, model_decision: ModelDecision | None = None
    ) -> SessionRunner:
        """Start the session on a folder already decided (by ``decide``, once). A folder policy
        denies is recorded, then refused with the reason (``SandboxFailed``); so is a model
        (``models.decide_model``) policy does not allow (``PolicyError``), before anything is sent."""
        runner = cls(decided, entry, model=model_decision.label if model_decision else "")
        if not decided.decision.allowed:
            await runner.close(outcome="refused")
            raise SandboxFailed(decided.decision.reason)
        if model_decision is not None:
            md = model_decision
            runner.auditor.policy_decision(md.subject, md.allowed, md.reason, md.tier)
            if not md.allowed:
                await runner.close(outcome="refused")
                raise refused(md)
        return runner

    @property
    def session_id(self) -> str:
        return self.auditor.session_id

    @property
    def folder(self) -> Path:
        return self.decided.folder

    @property
    def policy(self) -> EffectivePolicy:
        return self.decided.policy

    async def boot(
        self,
        *,
        on_progress: Progress | None = None,
        egress_asking: bool = False,
        host: str | None = None,
        warm: WarmPool | None = None,
    ) -> Sandbox:
        """Boot (or wake) the sandbox on the decided folder; the auditor follows it. On a sandbox
        host (``host``, else the one policy assigns, see ``paddock.remote``), its copy of the folder
        comes back after each command, so the restore points and change summary work the same.
        ``warm``: a pool whose sandbox, woken ahead of the folder, a session here takes (and never
        gives back)."""
        if self.sandbox is not None:
            raise SandboxFailed("This session already has a sandbox; close it first.")
        # The session's restore point is made while the VM starts (nothing in the guest can touch
        # the folder before boot returns and a command runs); boot returns only once it is made.
        # Lazy (a listing): the change guard keeps each file before the guest changes it; without
        # the guard, ``attach_guard`` makes a point that copies before boot returns.
        point = asyncio.ensure_future(self.undo.point(START, f"start of a session ({self.entry.value})", lazy=True))
        try:
            request = BootRequest(
                self.folder,
                policy=self.policy,
                decision=self.decided.decision,
                egress_asking=egress_asking,
                host=host,
                keeper=self.undo.keeper if self.undo.enabled else None,
                warm=warm,
            )
            sandbox = await Sandbox.start(request, on_progress=on_progress)
        except BaseException:
            point.cancel()
            with contextlib.suppress(BaseException):
                await point
            raise
        try:
            if not point.done() and on_progress is not None:
                on_progress("Finishing the folder's restore point")
            await self.undo.attach_guard(sandbox, await point)
        except BaseException:
            await sandbox.close()
            raise
        self.sandbox = sandbox
        if sandbox.host_name is not None:  # where the folder went: the admin's sandbox host
            self.auditor.policy_decision(f"run the sandbox on the host {sandbox.host_name}", True, "allowed", "managed")
        self.auditor.follow(sandbox)
        log.debug("session %s: sandbox %s ready", self.session_id, sandbox.vm.id)
        return sandbox

    async def close_sandbox(self) -> None:
        """Stop the sandbox and keep the session (the window's Restart boots another)."""
        sandbox, self.sandbox, self._box = self.sandbox, None, None
        self.undo.guard = None
        if sandbox is not None:
            await sandbox.close()

    def assistant(
        self, provider: ModelProvider, *, new: bool = False, conversations: Path | None = None
    ) -> AssistantSession:
        """The assistant loop on this session's sandbox and conversation (kept under
        ``conversations`` instead of with the folder's own, for a scheduled run), audited."""
        if self.sandbox is None:
            raise SandboxFailed("The sandbox is not running.")
        session = AssistantSession(self.sandbox, provider, ConversationStore(self.folder, conversations))
        if new:
            session.messages.clear()
        session.before_send.append(lambda text: self.undo.point(TURN, text))
        session.subscribe(self.auditor.on_agent_event)
        return session

    async def call_tool(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        """One tool call from outside the assistant loop (an MCP client), audited like the loop's."""
        if self.sandbox is None:
            raise SandboxFailed("The sandbox is not running.")
        if self._box is None:
            self._box = ToolBox(self.sandbox, session_id=self.session_id)
        call_id = "mcp_" + secrets.token_hex(6)
        summary = describe(name, args)
        known = TOOLS.get(name)
        if known is not None and known.where is Where.GUEST:  # each call a client makes is a turn
            await self.undo.point(TURN, summary)
        self.auditor.on_agent_event(ToolCalled(call_id, name, args, summary))
        outcome = await self._box.call(name, args)
        self.auditor.on_agent_event(
            ToolFinished(call_id, name, outcome.is_error, outcome.summary, outcome.detail, outcome.duration_s)
        )
        return outcome

    async def close(self, outcome: str = "finished") -> None:
        """Stop the sandbox and end the audit trail (the end is recorded once)."""
        if self._closed:
            return
        self._closed = True
        await self.close_sandbox()
        self.auditor.session_ended(outcome)
        await self.auditor.close()
        log.debug("session %s: closed (%s)", self.session_id, outcome)
        self.log.close()
