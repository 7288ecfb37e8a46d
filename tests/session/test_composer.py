"""Who answers a question is the composer's strategy, whatever the entry point: a scheduled run
answers no, ``paddock run --yes`` answers yes (and trusts the folder), ``paddock run`` without it
answers no, and the window's question reaches the desk, whose answer is the person's.

Each entry point is driven through its own front (``Desk.open``, the CLI's ``run`` handler,
``run_schedule``), so a caller that composed its session by hand, or answered on its own, would
leave a different audit record and fail here.

Real: policy decisions, the folder's trust store, the audit log (and its key in the keyring), the
undo store, the conversation store, the schedule store and lock. Fakes, said here: the model
service (``tests.fakes.messages_api``), and the sandbox — ``SessionRunner.boot`` is replaced by a
stand-in whose egress gateway already holds one refusal no grant covers, so the question is asked
the moment the session listens. The real gateway and VM ask the same question in
tests/egress/test_asking.py and tests/schedule/test_unattended.py.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import paddock.session.composer as composer
from paddock.audit import AuditLog
from paddock.cli import _run, build_parser
from paddock.core.errors import PaddockError
from paddock.core.signal import Signal
from paddock.desk import Desk, DeskEvent, EgressQuestion
from paddock.egress import Decision
from paddock.llm import AnthropicProvider, ModelProvider, ModelTarget
from paddock.policy import EffectivePolicy, EgressGrant, TrustStore
from paddock.remote import SyncReport
from paddock.schedule import ScheduleStore, run_schedule
from paddock.schedule.run import NOBODY
from paddock.session import model_choice
from paddock.session.runner import SessionRunner
from tests.fakes.messages_api import MessagesAPI, text

HOST = "charts.example.test"


class _Refusals:
    """The stand-in gateway's ``decided`` signal: one refusal is waiting, heard just after a
    listener connects."""

    def connect(self, listener: Callable[[Decision], None]) -> None:
        refused = Decision(False, "no grant covers this request", None, "CONNECT", HOST, "", 443, "https", True)
        asyncio.get_running_loop().call_soon(listener, refused)

    def disconnect(self, listener: Callable[[Decision], None]) -> None:
        return None


class _Gateway:
    def __init__(self) -> None:
        self.decided = _Refusals()
        self.session_grants: list[EgressGrant] = []

    def add_session_grant(self, grant: EgressGrant) -> None:
        self.session_grants.append(grant)


class _VM:
    id = "stand-in"

    async def failed(self) -> str:
        await asyncio.Event().wait()
        return ""


class _Sandbox:
    """Stands in for the VM: nothing here runs a command (the model's script calls no tool)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.gateway = _Gateway()
        self.vm = _VM()
        self.sync_done = Signal[SyncReport]("folder synced")
        self.where = "a stand-in"
        self.alive = True
        self.host_name = None

    async def close(self) -> None:
        return None


@pytest.fixture
def booted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every boot a session asked for (its keyword arguments); each gets a stand-in sandbox."""
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(8)}")
    monkeypatch.setenv("PADDOCK_SNAPSHOTS", "0")  # the window's pool wakes no real sandbox behind the stand-in
    asked: list[dict[str, Any]] = []

    async def boot(self: SessionRunner, **kw: Any) -> _Sandbox:
        asked.append(kw)
        sandbox = _Sandbox(self.folder)
        self.sandbox = sandbox  # type: ignore[assignment]
        return sandbox

    monkeypatch.setattr(SessionRunner, "boot", boot)
    # The CLI reads the installed policy files: this one lets a user be asked.
    monkeypatch.setattr(composer, "load_policy", lambda **_: EffectivePolicy(allow_asking=True))
    with MessagesAPI([text("done")] * 4) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        yield asked


def _answers(data: Path) -> list[tuple[bool, str]]:
    """The egress questions' answers the audit log recorded: (allowed, reason)."""
    return [
        (bool(a["paddock.policy.allowed"]), str(a["paddock.policy.reason"]))
        for r in AuditLog(data / "audit").records()
        if r["kind"] == "policy.decision" and HOST in str((a := r["attributes"])["paddock.policy.subject"])
    ]


def _backed_up(data: Path) -> list[str]:
    """What the sessions backed up before they began (the files that could run on the host)."""
    return sorted(str(p.relative_to(s)) for s in (data / "backups").iterdir() for p in s.rglob("*") if p.is_file())


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "CLAUDE.md").write_text("a project's own instructions")
    return folder


def test_a_scheduled_run_answers_no_and_never_trusts(tmp_path: Path, booted: list[dict[str, Any]]) -> None:
    folder = _folder(tmp_path)
    store = ScheduleStore()
    sid = store.add(folder=str(folder), when="every day 08:00", on_calendar="*-*-* 08:00:00", task="Tidy up",
                    timeout_min=5, created=datetime.now().astimezone()).id  # fmt: skip
    run = asyncio.run(run_schedule(sid, store=store, notifier=lambda *_: None,
                                   policy_loader=lambda **_: EffectivePolicy(allow_asking=True)))  # fmt: skip
    assert run.outcome == "finished" and run.questions == [HOST], run
    assert _answers(tmp_path / "data") == [(False, NOBODY)]
    assert [kw["egress_asking"] for kw in booted] == [True]
    assert not TrustStore().is_trusted(folder)
    assert _backed_up(tmp_path / "data") == ["CLAUDE.md"]  # the same chain as the window's: Revert has a copy


@pytest.mark.parametrize("yes", [True, False], ids=["--yes", "without --yes"])
def test_paddock_run_follows_yes(
    tmp_path: Path, booted: list[dict[str, Any]], capsys: pytest.CaptureFixture[str], yes: bool
) -> None:
    folder = _folder(tmp_path)
    ns = build_parser().parse_args(["run", "--folder", str(folder), *(["--yes"] if yes else []), "Tidy up"])
    assert asyncio.run(_run(ns)) == 0
    out, err = capsys.readouterr()
    assert "done" in out
    [(allowed, why)] = _answers(tmp_path / "data")
    assert allowed is yes and "--yes" in why
    assert TrustStore().is_trusted(folder) is yes
    assert f"asked to reach {HOST}: answered {'yes' if yes else 'no'}" in err
    assert ("this folder is not trusted" in err) is not yes  # its CLAUDE.md is named, then ignored
    assert _backed_up(tmp_path / "data") == ["CLAUDE.md"]


def test_the_windows_question_reaches_the_desk_and_the_answer_is_the_persons(
    tmp_path: Path, booted: list[dict[str, Any]]
) -> None:
    folder = _folder(tmp_path)
    events: list[DeskEvent] = []
    desk = Desk(
        policy_loader=lambda **_: EffectivePolicy(allow_asking=True),
        provider_factory=lambda target, _key: AnthropicProvider(f"test-{secrets.token_hex(6)}", model=target.model),
    )
    desk.subscribe(events.append)

    async def go() -> int:
        await desk.open(folder)
        await asyncio.sleep(0)  # the refusal arrives
        [question] = [e for e in events if isinstance(e, EgressQuestion)]
        assert question.host == HOST and _answers(tmp_path / "data") == []  # asked, not answered by anyone else
        await desk.answer(question.id, True)
        assert desk._open is not None and desk._open.sandbox is not None
        assert [g.host for g in desk._open.sandbox.gateway.session_grants] == [HOST]  # type: ignore[union-attr]
        return (await desk.finish()).questions_asked

    assert asyncio.run(go()) == 1
    assert _answers(tmp_path / "data") == [(True, "the person answered yes")]
    assert len(booted) == 1 and booted[0]["warm"] is desk.pool  # the window's woken sandbox is offered


def test_a_folder_the_window_may_not_share_is_refused_and_recorded(
    tmp_path: Path, booted: list[dict[str, Any]]
) -> None:
    """The window decides the folder the one way too: the refusal is in the audit log, as for ``paddock run``."""
    folder = _folder(tmp_path)
    desk = Desk(policy_loader=lambda **_: EffectivePolicy(denied_paths=[folder]))
    with pytest.raises(PaddockError, match="never shares"):
        asyncio.run(desk.open(folder))
    assert booted == [] and desk.folder is None
    decisions = [
        r["attributes"] for r in AuditLog(tmp_path / "data" / "audit").records() if r["kind"] == "policy.decision"
    ]
    assert [(d["paddock.policy.allowed"], d["paddock.policy.subject"]) for d in decisions] == [
        (False, f"share folder {folder}")
    ]


def test_opening_a_folder_in_the_window_loads_the_policy_once(tmp_path: Path, booted: list[dict[str, Any]]) -> None:
    """A folder click: the check before the trust question reads the policy, and the open reads it
    once more (with the folder's own tier once trusted) — it was three reads."""
    folder = _folder(tmp_path)
    loads: list[dict[str, Any]] = []

    def loader(**kw: Any) -> EffectivePolicy:
        loads.append(kw)
        return EffectivePolicy()

    desk = Desk(policy_loader=loader)

    async def click() -> None:
        check = await desk.check_folder(folder)
        await desk.trust(check.folder)
        await desk.open(check.folder)
        await desk.finish()

    asyncio.run(click())
    assert len(loads) == 2, loads
    assert loads[1] == {"folder": folder.resolve(), "folder_trusted": True}


def test_a_sessions_end_closes_its_model_client(
    tmp_path: Path, booted: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's session and ``paddock run`` each close the model's SDK client when they end,
    on their own loop. Left open, the client closed itself when the garbage collector found it,
    on whatever loop ran then: "Task exception was never retrieved … AsyncClient.aclose() …
    RuntimeError('Event loop is closed')" (seen in ``python -m benchmarks``)."""
    made: list[AnthropicProvider] = []

    def provider(target: ModelTarget, _key: str | None) -> ModelProvider:
        made.append(AnthropicProvider(f"test-{secrets.token_hex(6)}", model=target.model))
        return made[-1]

    monkeypatch.setattr(model_choice, "provider_for", provider)
    folder = _folder(tmp_path)
    desk = Desk(provider_factory=provider)

    async def window() -> None:
        await desk.open(folder)
        assert await desk.send("Tidy up") == "done"  # a real request: the client holds a connection
        await desk.finish()

    asyncio.run(window())
    ns = build_parser().parse_args(["run", "--folder", str(folder), "--yes", "Tidy up"])
    assert asyncio.run(_run(ns)) == 0
    assert len(made) == 2
    assert [p._client.is_closed() for p in made] == [True, True]

    reported: list[str] = []

    async def later() -> None:  # another loop, as the next benchmark's: the garbage collector runs
        asyncio.get_running_loop().set_exception_handler(lambda _l, c: reported.append(str(c.get("message"))))
        made.clear()
        gc.collect()
        for _ in range(3):
            await asyncio.sleep(0)

    asyncio.run(later())
    assert reported == []
