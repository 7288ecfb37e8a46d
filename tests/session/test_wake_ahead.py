"""The headless paths wake their sandbox ahead (#33): ``paddock run``, a schedule's run and
``paddock mcp`` start waking a sandbox as soon as their session is decided, and the session
takes that one (the session's log says "woken ahead") instead of waking one after the folder.
Where it cannot pay (the window's own pool, a sandbox host, saved sandboxes off) none is woken.

Real: the VM woken from the saved sandbox, the guest agent, the session's log, the CLI in a
subprocess, the MCP SDK's client over stdio, the schedule store. The one fake is the model service
(``tests.fakes.messages_api``, a loopback Messages API).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from paddock.core.paths import data_dir
from paddock.policy import EffectivePolicy
from paddock.sandbox import SNAPSHOT_ENV, WarmPool
from paddock.schedule import ScheduleStore, run_schedule
from paddock.session.composer import AnswerNo, SessionPlan, _woken_ahead
from paddock.session.runner import EntryPoint
from tests.fakes.messages_api import MessagesAPI, text, tool

AHEAD = "woken ahead)"  # the sandbox's line in the session's log: "ready on … (tcg, 1.23 s, woken ahead)"


def _session_log(data: Path) -> str:
    logs = sorted((data / "logs").glob("session-*.log"))
    assert len(logs) == 1, logs
    return logs[0].read_text()


def _env(data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PADDOCK_DATA_DIR": str(data), **extra}


@pytest.mark.vm
def test_run_takes_the_sandbox_it_woke_ahead(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    key = f"test-{secrets.token_hex(16)}"
    with MessagesAPI([tool("run_command", command="echo made > made.txt"), text("Done.")]) as api:
        proc = subprocess.run(
            [sys.executable, "-m", "paddock.cli", "run", "--folder", str(folder), "--new", "make a file"],
            capture_output=True, text=True, timeout=300,
            env=_env(data, ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY=key),
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (folder / "made.txt").read_text() == "made\n"
    log = _session_log(data)
    assert AHEAD in log, log


@pytest.mark.vm
def test_mcp_takes_the_sandbox_it_woke_ahead(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()

    async def round_trip() -> str:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "paddock.cli", "mcp", "--folder", str(folder)], env=_env(data)
        )
        async with Client(params, read_timeout_seconds=120) as client:
            ran = await client.call_tool("run_command", {"command": "echo via-mcp"})
            return "".join(getattr(c, "text", "") for c in ran.content)

    assert "via-mcp" in asyncio.run(asyncio.wait_for(round_trip(), 240))
    log = _session_log(data)
    assert AHEAD in log, log


@pytest.mark.vm
def test_a_scheduled_run_takes_the_sandbox_it_woke_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    store = ScheduleStore()
    sid = store.add(folder=str(folder), when="every day 08:00", on_calendar="*-*-* 08:00:00", task="Say hello",
                    timeout_min=5, created=datetime.now().astimezone()).id  # fmt: skip
    with MessagesAPI([text("Hello.")]) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(16)}")
        run = asyncio.run(run_schedule(sid, store=store, notifier=lambda *_: None))
    assert run.outcome == "finished", run
    log = (data_dir() / "logs" / f"session-{run.session_id}.log").read_text()
    assert AHEAD in log, log


def _plan(**fields: object) -> SessionPlan:
    return SessionPlan(EntryPoint.RUN, AnswerNo("nobody"), **fields)  # type: ignore[arg-type]


def test_no_sandbox_is_woken_ahead_where_it_cannot_pay(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VM starts in this test: each case returns before anything is woken."""
    monkeypatch.setenv(SNAPSHOT_ENV, "1")
    policy = EffectivePolicy()
    assert _woken_ahead(_plan(), policy) is None  # the plan did not ask (the window, sandbox exec, undo)
    assert _woken_ahead(_plan(wake_ahead=True, warm=WarmPool()), policy) is None  # the window's pool instead
    assert _woken_ahead(_plan(wake_ahead=True, host="build-box"), policy) is None  # a sandbox host's VM
    monkeypatch.setenv(SNAPSHOT_ENV, "0")
    assert _woken_ahead(_plan(wake_ahead=True), policy) is None  # saved sandboxes off: nothing to wake
