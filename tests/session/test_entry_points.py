"""One way in: the window, ``paddock run``, ``paddock mcp`` and ``paddock sandbox exec`` all
open their session through ``paddock.session.runner``, so each leaves the same linked audit
trail: the session, the folder decision, what ran in the guest, and the end.

Real: the VM, the guest agent, the audit log on disk, the MCP SDK's client over stdio. The one
fake is the model service (``tests.fakes.messages_api``, a loopback Messages API).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paddock.audit import AuditLog
from paddock.core.engine import Engine
from paddock.desk import Desk
from paddock.llm import AnthropicProvider
from tests.fakes.messages_api import MessagesAPI, text, tool

pytestmark = pytest.mark.vm


def _sessions(data: Path) -> dict[str, list[dict[str, Any]]]:
    """The audit log's records, by session."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in AuditLog(data / "audit").records():
        out.setdefault(str(rec["session_id"]), []).append(rec)
    return out


def _only_session(data: Path, entry: str) -> list[dict[str, Any]]:
    found = [recs for recs in _sessions(data).values() if recs[0]["attributes"].get("paddock.entry") == entry]
    assert len(found) == 1, f"expected one {entry} session in the audit log, found {len(found)}"
    return found[0]


def _assert_linked_trail(records: list[dict[str, Any]], *, process: bool = True) -> None:
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "session.started" and kinds[-1] == "session.ended", kinds
    decision = next(r for r in records if r["kind"] == "policy.decision")
    assert decision["attributes"]["paddock.policy.allowed"] is True
    assert decision["parent_span_id"] == records[0]["span_id"]
    spans = {r["span_id"] for r in records}
    for r in records[1:]:  # every record hangs off a record of the same session
        assert r["parent_span_id"] in spans, f"{r['kind']} is not linked into the session"
    if process:
        assert "guest.process.started" in kinds and "guest.process.exited" in kinds, kinds


def _env(data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PADDOCK_DATA_DIR": str(data), **extra}


def test_sandbox_exec_leaves_an_audit_trail(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "sandbox", "exec", "--folder", str(folder), "--", "sh", "-c", "echo hi"],
        capture_output=True, text=True, timeout=300, env=_env(data),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = _only_session(data, "sandbox-exec")
    _assert_linked_trail(records)
    started = next(r for r in records if r["kind"] == "guest.process.started")
    assert started["attributes"]["process.command_args"] == ["sh", "-c", "echo hi"]


def test_a_refused_folder_is_recorded_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "sandbox", "exec", "--folder", str(home / ".ssh"), "--", "true"],
        capture_output=True, text=True, timeout=120, env=_env(data, HOME=str(home)),
    )  # fmt: skip
    assert proc.returncode == 125 and "never shares" in proc.stderr
    records = _only_session(data, "sandbox-exec")
    assert [r["kind"] for r in records] == ["session.started", "policy.decision", "session.ended"]
    assert records[1]["attributes"]["paddock.policy.allowed"] is False
    assert records[2]["attributes"]["paddock.outcome"] == "refused"


def test_run_leaves_an_audit_trail(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    key = f"test-{secrets.token_hex(16)}"
    with MessagesAPI([tool("run_command", command="echo made > made.txt"), text("Done.")]) as api:
        env = _env(data, ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY=key)
        proc = subprocess.run(
            [sys.executable, "-m", "paddock.cli", "run", "--folder", str(folder), "--new", "make a file"],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = _only_session(data, "run")
    _assert_linked_trail(records)
    kinds = [r["kind"] for r in records]
    assert "turn" in kinds and "tool.call" in kinds and "tool.result" in kinds
    assert records[-1]["attributes"]["paddock.outcome"] == "finished"
    # The session's own log, for a support request: every state change, never the key.
    log = (data / "logs" / f"session-{records[0]['session_id']}.log").read_text()
    for line in ("-> booting", "-> ready", "assistant: idle -> model", "assistant: model -> tools", "closed"):
        assert line in log, f"{line!r} not in the session log:\n{log}"
    assert key not in log and key[5:] not in log
    assert (data / "logs").stat().st_mode & 0o077 == 0


def test_mcp_leaves_an_audit_trail_and_offers_every_tool_that_makes_sense_outside(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    from paddock.assistant.tools import TOOLS

    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()

    async def round_trip() -> tuple[list[str], str]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "paddock.cli", "mcp", "--folder", str(folder)], env=_env(data)
        )
        async with Client(params, read_timeout_seconds=120) as client:
            listed = await client.list_tools()
            ran = await client.call_tool("run_command", {"command": "echo via-mcp"})
            return [t.name for t in listed.tools], "".join(getattr(c, "text", "") for c in ran.content)

    names, ran = asyncio.run(asyncio.wait_for(round_trip(), 240))
    assert "via-mcp" in ran
    assert set(names) == {t.name for t in TOOLS.values() if t.outside_app}
    assert set(TOOLS) - set(names) == {"remember"}  # the assistant's own memory stays the app's
    records = _only_session(data, "mcp")
    _assert_linked_trail(records)
    call = next(r for r in records if r["kind"] == "tool.call")
    assert call["attributes"]["gen_ai.tool.name"] == "run_command"
    started = next(r for r in records if r["kind"] == "guest.process.started")
    assert started["parent_span_id"] == call["span_id"]  # the command hangs off the MCP call


def test_the_window_leaves_an_audit_trail(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(data))
    with MessagesAPI([tool("run_command", command="echo from-the-window"), text("Done.")]) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        desk = Desk(
            provider_factory=lambda target, _key: AnthropicProvider(f"test-{secrets.token_hex(6)}", model=target.model)
        )

        async def session() -> None:
            await desk.trust(folder)
            await desk.open(folder)
            assert await desk.send("say hello") == "Done."
            await desk.finish()
            await desk.close()  # and the sandbox woken for the next folder

        engine.run(session(), timeout=300)
    records = _only_session(data, "window")
    _assert_linked_trail(records)
    assert json.dumps(records).count('"tool.call"') == 1
