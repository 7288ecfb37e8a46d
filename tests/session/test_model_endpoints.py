"""Choosing the model (#21): a session on an OpenAI-compatible endpoint in the real VM, and the
endpoint policy enforced before anything is sent.

Real: the VM, the guest agent, the ``openai`` SDK, policy files, the audit log on disk. The one
fake is the model service: ``tests.fakes.chat_completions``, a loopback Chat Completions server
standing in for a remote OpenAI-compatible endpoint (each counts the requests it got).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paddock.audit import AuditLog
from paddock.desk import Desk
from paddock.policy import PolicyError, load
from tests.fakes.chat_completions import ChatCompletionsAPI
from tests.fakes.messages_api import MessagesAPI, text, tool


def _records(data: Path) -> list[dict[str, Any]]:
    return list(AuditLog(data / "audit").records())


def _model_decisions(data: Path) -> list[dict[str, Any]]:
    return [
        r["attributes"]
        for r in _records(data)
        if r["kind"] == "policy.decision" and r["attributes"]["paddock.policy.subject"].startswith("model ")
    ]


def _run(folder: Path, data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    return subprocess.run(
        [sys.executable, "-m", "paddock.cli", "run", "--folder", str(folder), "--new", *args],
        capture_output=True, text=True, timeout=300, env={**clean, "PADDOCK_DATA_DIR": str(data), **env},
    )  # fmt: skip


@pytest.mark.vm
def test_a_session_on_an_openai_compatible_endpoint_runs_a_command_and_writes_a_file(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    key = f"test-{secrets.token_hex(16)}"
    steps = [
        tool("run_command", command="echo made-in-the-vm > made.txt && cat made.txt && uname -r"),
        text("Done: made.txt is written."),
    ]
    with ChatCompletionsAPI(steps) as api:
        proc = _run(folder, data, "--model", "openai:llama3.1", "make a file", OPENAI_BASE_URL=api.url,
                    OPENAI_API_KEY=key)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert api.count == 2
        first, second = api.requests
    assert (folder / "made.txt").read_text() == "made-in-the-vm\n"  # written by the guest, seen on the host
    assert "Done: made.txt is written." in proc.stdout and "▸ Run a command" in proc.stdout
    assert key not in proc.stdout + proc.stderr
    assert first["model"] == "llama3.1" and first["messages"][0]["role"] == "system"
    call = second["messages"][2]["tool_calls"][0]
    assert (
        call["function"]["name"] == "run_command" and "made.txt" in json.loads(call["function"]["arguments"])["command"]
    )
    result = second["messages"][3]
    assert result["role"] == "tool" and result["tool_call_id"] == call["id"]
    assert re.match(r'<untrusted_data id="[0-9a-f]{16}" source="command output">', result["content"])
    assert "made-in-the-vm" in result["content"] and "-paddock" in result["content"]  # ran in the guest's kernel
    # Persisted in Messages API shape, whichever provider spoke.
    saved = json.loads(next((data / "conversations").glob("*.json")).read_text())
    messages = saved["messages"] if isinstance(saved, dict) else saved
    kinds = [b["type"] for m in messages for b in m["content"]]
    assert kinds == ["text", "tool_use", "tool_result", "text"], kinds
    records = _records(data)
    assert records[0]["attributes"]["gen_ai.request.model"] == "openai:llama3.1"
    decision = _model_decisions(data)[0]
    assert decision["paddock.policy.allowed"] is True and api.url.rstrip("/") in decision["paddock.policy.subject"]
    assert records[-1]["attributes"]["paddock.outcome"] == "finished"


# ---------------------------------------------------------------------------------- enforcement


@pytest.fixture
def managed(tmp_path: Path) -> tuple[ChatCompletionsAPI, ChatCompletionsAPI, Path]:
    """Two loopback servers: ``allowed``, which the managed policy names as the endpoint ``local``
    (model llama3.1 only), and ``elsewhere``, which no policy names."""
    allowed, elsewhere = ChatCompletionsAPI([text("no")]), ChatCompletionsAPI([text("no")])
    policy = tmp_path / "managed.json"
    policy.write_text(json.dumps({"models": {"endpoints": [
        {"name": "local", "kind": "openai", "base_url": allowed.url, "models": ["llama3.1"]}]}}))  # fmt: skip
    return allowed, elsewhere, policy


@pytest.mark.parametrize(
    ("requested", "env_to_elsewhere", "says"),
    [
        ("openai:llama3.1", False, "no model endpoint called 'openai'"),  # an endpoint off the list
        ("local:mistral", False, "'mistral' is not allowed on the endpoint 'local'"),  # a model off the list
        ("local:llama3.1", True, "OPENAI_BASE_URL points to"),  # the SDK's variable pointing elsewhere
    ],
    ids=["endpoint-off-the-list", "model-off-the-list", "base-url-variable-elsewhere"],
)
def test_a_request_policy_does_not_allow_is_refused_with_nothing_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, managed: tuple[ChatCompletionsAPI, ChatCompletionsAPI, Path],
    requested: str, env_to_elsewhere: bool, says: str,
) -> None:  # fmt: skip
    allowed, elsewhere, policy = managed
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(data))
    monkeypatch.setenv("OPENAI_API_KEY", f"test-{secrets.token_hex(8)}")
    with allowed, elsewhere:
        monkeypatch.setenv("OPENAI_BASE_URL", elsewhere.url if env_to_elsewhere else allowed.url)
        desk = Desk(policy_loader=lambda **kw: load(managed=policy, recommended=tmp_path / "r", user=tmp_path / "u",
                                                    admin_uid=os.geteuid(), **kw))  # fmt: skip
        with pytest.raises(PolicyError, match=re.escape(says)):
            asyncio.run(desk.open(folder, model=requested))
        assert allowed.count == 0 and elsewhere.count == 0  # nothing was sent anywhere
    assert desk.folder is None and desk.sandbox_state.value == "stopped"  # no sandbox either
    [decision] = _model_decisions(data)
    assert decision["paddock.policy.allowed"] is False and says in decision["paddock.policy.reason"]
    assert decision["paddock.policy.tier"] == "managed"
    assert _records(data)[-1]["attributes"]["paddock.outcome"] == "refused"


def test_paddock_run_refuses_a_base_url_the_policy_does_not_list_in_plain_words(tmp_path: Path) -> None:
    """The old form of ``models.endpoints`` (base URLs) now restricts the built-in endpoints."""
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    data.mkdir()
    (data / "settings.json").write_text(json.dumps({"models": {"endpoints": ["https://api.anthropic.com"]}}))
    with MessagesAPI([text("no")]) as api:
        proc = _run(folder, data, "hello", ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY="test-key")
        assert len(api.requests) == 0
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"ANTHROPIC_BASE_URL points to {api.url}" in proc.stderr and "paddock policy check" in proc.stderr
    [decision] = _model_decisions(data)
    assert (
        decision["paddock.policy.allowed"] is False and decision["paddock.policy.tier"] == "built-in, narrowed by user"
    )


def test_bad_model_values_are_one_clear_line(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    for value, says in (
        (":llama", "names no endpoint"),
        ("openai:", "Name the model"),
        ("nope:x", "no model endpoint"),
    ):
        proc = _run(folder, data, "--model", value, "hello")
        assert proc.returncode == 1 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_local_server_behind_the_built_in_openai_endpoint_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from paddock.policy import EffectivePolicy
    from paddock.session.model_choice import decide_model, make_provider

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ChatCompletionsAPI([text("hello from the desk")]) as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.url)
        policy = EffectivePolicy()
        choice = decide_model(policy, "openai:llama3.1")
        assert choice.target is not None and choice.target.base_url == api.url
        provider = make_provider(policy, choice.target)
        reply = asyncio.run(provider.complete(system="s", messages=[{"role": "user", "content": "hi"}], tools=[],
                                              on_text=lambda _: None))  # fmt: skip
        assert reply.text == "hello from the desk"
        assert "authorization" not in api.headers[0] or api.headers[0]["authorization"] == "Bearer no-key"
