"""The session composer: the chain every entry point runs, written once. The window
(``paddock.desk``), ``paddock run``, ``paddock mcp``, ``paddock sandbox exec``, ``paddock undo``
and a schedule's run each say only how they differ (a ``SessionPlan``) and who answers a
question (an ``Answers`` strategy)::

    compose(folder, plan)     trust (the strategy: as stored, or trusted by --yes)
        │                     the folder decided once, policy loaded once (runner.decide)
        │                     the model decided against that policy (refused: recorded, nothing sent)
        │                     runner.begin: the audit trail and the decisions recorded
        │                     the folder listed and what could run on the host backed up (a change summary)
    session.boot()            the model provider made (a missing key stops here, before the sandbox starts);
        │                     the sandbox booted or woken; a question (egress no grant covers,
        │                     where policy allows asking) goes to the strategy
        │                     the assistant loop on it, subscribed
    session.close()           the sandbox stopped, the session's end recorded once

Who answers a question: ``AskThePerson`` (the window: the person trusts the folder in the window
before it opens, and each egress question reaches the window, whose answer comes back through
``EgressAsker.answer``), ``AnswerNo`` (a scheduled run, an MCP client, ``paddock sandbox exec``,
``paddock run`` without ``--yes``: each question answered no and recorded with the reason) and
``AnswerYes`` (``paddock run --yes``: the folder trusted, each question policy lets a user answer
answered yes, recorded). A request held after a sensitive read (``taint_questions``) is a question
of its own (``Answers.held``): only a person can say yes to it, so ``--yes`` answers it no.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from paddock.assistant.loop import AssistantEvent, AssistantSession
from paddock.core.paths import data_dir
from paddock.llm import ModelProvider, ModelTarget
from paddock.policy import EffectivePolicy, TrustStore, behaviour_files
from paddock.policy import load as load_policy
from paddock.sandbox import Sandbox, WarmPool, snapshots_enabled, wake_ahead
from paddock.session import model_choice
from paddock.session.egress_alerts import on_tripwire
from paddock.session.egress_questions import EgressAsker, EgressQuestion
from paddock.session.runner import EntryPoint, PolicyLoader, Progress, SessionRunner, decide
from paddock.session.taint_questions import TaintAsker
from paddock.undo.changes import Change, Entry, back_up, diff, list_folder

log = logging.getLogger(__name__)
NO_QUESTIONS = "answered no: this session starts no sandbox, so nothing asks"  # paddock undo, the window's undo


def stored_trust(folder: Path) -> bool:
    """Whether the person trusted ``folder`` before (``paddock.policy.trust``)."""
    return folder.is_dir() and TrustStore().is_trusted(folder)


class Settles(Protocol):
    """An asker whose question can be answered on the spot (``EgressAsker``, ``TaintAsker``)."""

    def settle(self, question_id: str, allow: bool, why: str) -> None: ...


class Answers(Protocol):
    """Who answers the questions a session asks: whether the folder is trusted, egress no grant
    covers (asked only where policy allows asking), and a request held after a sensitive read."""

    def trust(self, folder: Path) -> bool:
        """Whether the folder is trusted for this session (called in a worker thread)."""
        ...

    def egress(self, question: EgressQuestion, asker: Settles) -> None:
        """A question: answer it now (``asker.settle``) or hand it to someone who will."""
        ...

    def held(self, question: EgressQuestion, asker: Settles) -> None:
        """A request held after a sensitive read: only a person may let it through."""
        ...


class AskThePerson:
    """The window: the person answered the trust question in the window before the folder opened,
    and each egress question is shown to them (``show``); their answer comes back through
    ``EgressAsker.answer``."""

    def __init__(self, show: Callable[[EgressQuestion], None]) -> None:
        self.show = show

    def trust(self, folder: Path) -> bool:
        return stored_trust(folder)

    def egress(self, question: EgressQuestion, asker: Settles) -> None:
        self.show(question)

    def held(self, question: EgressQuestion, asker: Settles) -> None:
        self.show(question)


class AnswerNo:
    """Nobody is there to answer: the folder's trust stays as stored, and each question is answered
    no at once, recorded with ``why``."""

    def __init__(self, why: str) -> None:
        self.why = why

    def trust(self, folder: Path) -> bool:
        return stored_trust(folder)

    def egress(self, question: EgressQuestion, asker: Settles) -> None:
        asker.settle(question.id, False, self.why)

    def held(self, question: EgressQuestion, asker: Settles) -> None:
        asker.settle(question.id, False, self.why)


class AnswerYes:
    """``paddock run --yes``: the folder is trusted, and each question policy lets a user answer is
    answered yes (a grant for this session only), recorded as the flag's answer."""

    WHY = "answered yes: paddock run was given --yes"
    HELD = "answered no: data going out after a sensitive read needs a person's yes, which --yes is not"

    def trust(self, folder: Path) -> bool:
        if not folder.is_dir():
            return False
        TrustStore().trust(folder)
        return True

    def egress(self, question: EgressQuestion, asker: Settles) -> None:
        asker.settle(question.id, True, self.WHY)

    def held(self, question: EgressQuestion, asker: Settles) -> None:
        asker.settle(question.id, False, self.HELD)


@dataclass(frozen=True)
class SessionPlan:
    """How an entry point's session differs from the others'; the chain is the same for all."""

    entry: EntryPoint
    answers: Answers
    assistant: bool = False  # the model is decided and its provider made (the assistant loop runs)
    model: str | None = None  # [ENDPOINT:]MODEL asked for (None: the policy's default)
    summary: bool = False  # list the folder first and back up what could run on the host (a change summary)
    host: str | None = None  # a sandbox host policy names (None: the one policy assigns, else here)
    warm: WarmPool | None = None  # a sandbox woken ahead of the folder (the window's)
    # Wake a sandbox as soon as the session is decided (``wake_ahead``), while the folder is listed and
    # backed up and the provider made: the headless paths (paddock run, a schedule's run, paddock mcp).
    wake_ahead: bool = False
    new_conversation: bool = False  # the first boot starts a new conversation instead of resuming
    conversations: Path | None = None  # where the conversation is kept (None: with the folder's own)
    policy_loader: PolicyLoader | None = None  # stands in for the policy files (None: the installed ones)
    provider_factory: model_choice.ProviderFactory | None = None
    warn: Callable[[str], None] | None = None  # undo's warnings, in plain words (default: the log)
    on_event: Callable[[AssistantEvent], None] | None = None  # the assistant's events
    alert: Callable[[str], None] | None = None  # one sentence when a tripwire fires (default: the log)


@dataclass
class Composed:
    """One session composed by ``compose``: its runner, what the folder held before, the provider,
    and per boot the sandbox's egress questions and assistant loop."""

    plan: SessionPlan
    runner: SessionRunner
    ignored: list[str]  # the folder's own settings left out because it is not trusted
    before: dict[str, Entry] = field(default_factory=dict)  # the folder before the session (plan.summary)
    backup: Path | None = None  # copies of what could run on the host, from before (plan.summary)
    target: ModelTarget | None = None  # the model policy allowed (plan.assistant)
    provider: ModelProvider | None = None
    asker: EgressAsker | None = None
    held: TaintAsker | None = None  # requests held after a sensitive read, as questions
    ahead: WarmPool | None = None  # the sandbox woken ahead for this session (plan.wake_ahead)
    agent: AssistantSession | None = None
    questions: list[EgressQuestion] = field(default_factory=list)  # every one asked, over every boot
    _booted: int = 0

    @property
    def folder(self) -> Path:
        return self.runner.folder

    @property
    def policy(self) -> EffectivePolicy:
        return self.runner.policy

    @property
    def sandbox(self) -> Sandbox | None:
        return self.runner.sandbox

    async def boot(self, on_progress: Progress | None = None) -> Sandbox:
        """Boot (or wake) the sandbox; questions go to the plan's strategy; the assistant loop on it."""
        plan, runner = self.plan, self.runner
        if self.target is not None and self.provider is None:  # a missing key stops here, before the boot
            self.provider = model_choice.make_provider(self.policy, self.target, plan.provider_factory)
        asking = self.policy.allow_asking
        warm = plan.warm or self.ahead
        sandbox = await runner.boot(on_progress=on_progress, egress_asking=asking, host=plan.host, warm=warm)
        if sandbox.gateway is not None and asking:
            asker = EgressAsker(sandbox.gateway, lambda q: self._asked(q, asker), runner.auditor)
            self.asker = asker
        if sandbox.gateway is not None:
            held = TaintAsker(sandbox.gateway, lambda q: self._held(q, held), runner.auditor)
            self.held = held
            sandbox.gateway.decided.connect(on_tripwire(plan.alert or log.warning))
        if self.provider is not None:
            new = plan.new_conversation and self._booted == 0
            self.agent = runner.assistant(self.provider, new=new, conversations=plan.conversations)
            if plan.on_event is not None:
                self.agent.subscribe(plan.on_event)
        self._booted += 1
        return sandbox

    def _asked(self, question: EgressQuestion, asker: EgressAsker) -> None:
        self.questions.append(question)
        self.plan.answers.egress(question, asker)

    def _held(self, question: EgressQuestion, asker: TaintAsker) -> None:
        self.questions.append(question)
        self.plan.answers.held(question, asker)

    async def answer(self, question_id: str, allow: bool) -> bool:
        """The person's answer to a question this session asked; False when none is waiting."""
        if self.held is not None and self.held.owns(question_id):
            await self.held.answer(question_id, allow)
            return True
        if self.asker is None:
            return False
        await self.asker.answer(question_id, allow)
        return True

    async def close_sandbox(self) -> None:
        """Stop the sandbox and keep the session (the window's Restart boots another)."""
        self.agent, self.asker, self.held = None, None, None
        await self.runner.close_sandbox()

    async def _close_ahead(self) -> None:
        """Stop the sandbox woken ahead if the session never took it (a boot that failed before)."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            await ahead.close()

    async def changes(self) -> list[Change]:
        """What changed in the folder since the session began (none listed without plan.summary)."""
        if not self.plan.summary:
            return []
        return diff(self.before, await asyncio.to_thread(list_folder, self.folder))

    async def close(self, outcome: str = "finished") -> None:
        """Stop the sandbox, end the session (its end is recorded once) and close the model's
        client (its connections, on this loop)."""
        self.agent, self.asker, self.held = None, None, None
        provider, self.provider = self.provider, None
        try:
            await self._close_ahead()
        finally:
            try:
                await self.runner.close(outcome=outcome)
            finally:
                if provider is not None:
                    await provider.close()


async def compose(folder: Path, plan: SessionPlan) -> Composed:
    """Open a session on ``folder`` the one way: trust, the folder and the model decided on one
    load of the policy, the session begun (refusals recorded, then raised), the folder listed and
    backed up. ``Composed.boot`` makes the provider and starts the sandbox."""
    folder = await asyncio.to_thread(folder.expanduser)
    trusted = await asyncio.to_thread(plan.answers.trust, folder)
    loader = plan.policy_loader or load_policy
    decided = await asyncio.to_thread(decide, folder, trusted=trusted, policy_loader=loader)
    choice = model_choice.decide_model(decided.policy, plan.model) if plan.assistant else None
    runner = await SessionRunner.begin(decided, plan.entry, model_decision=choice)
    if plan.warn is not None:
        runner.undo.warn = plan.warn
    session: Composed | None = None
    try:
        real = runner.folder
        session = Composed(plan, runner, [], ahead=_woken_ahead(plan, runner.policy))
        if not trusted and real.is_dir():
            session.ignored = await asyncio.to_thread(behaviour_files, real)
        if plan.summary:
            session.before = await asyncio.to_thread(list_folder, real)
            session.backup = data_dir() / "backups" / runner.session_id
            await asyncio.to_thread(back_up, real, session.before, session.backup)
        session.target = choice.target if choice is not None else None
    except BaseException:
        if session is not None:
            await session._close_ahead()
        await runner.close(outcome="failed")
        raise
    log.debug("session %s: composed for %s", runner.session_id, plan.entry.value)
    return session


def _woken_ahead(plan: SessionPlan, policy: EffectivePolicy) -> WarmPool | None:
    """A sandbox woken now for a session that will boot one soon (``plan.wake_ahead``): started
    once the session is decided (never for a refused folder or model), so the wake overlaps the
    folder's listing and back-up and the provider, and the boot only attaches the folder and claims
    it. None where it cannot pay: the window's pool is given, the sandbox runs on a sandbox host
    (named, or one policy may assign), or saved sandboxes are off. Where none is saved yet, this
    saves it first (once per image), so the next headless session wakes instead of booting cold."""
    if not plan.wake_ahead or plan.warm is not None or plan.host or policy.sandbox_hosts or not snapshots_enabled():
        return None
    return wake_ahead()
