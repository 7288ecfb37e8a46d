"""Folder trust and policy decisions, end to end: the CLI, the app's engine and the real VM."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paddock.assistant.loop import AssistantSession, ConversationStore
from paddock.core.engine import Engine
from paddock.llm import AnthropicProvider
from paddock.policy import TrustStore
from paddock.sandbox import Sandbox, SandboxFailed
from tests.conftest import live_processes
from tests.fakes.messages_api import MessagesAPI, text, tool

# Prints HOOKSEEN (a word the command line itself does not contain) for each marker the guest has.
GUEST_CHECK = (
    'for f in /tmp/hook-ran /workspace/hook-ran /home/agent/hook-ran; do test -e $f && echo HOOK""SEEN $f; done; true'
)


def _hooked_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder whose committed settings carry hooks that would leave markers, on the host or in the guest."""
    folder = tmp_path / "project"
    (folder / ".claude").mkdir(parents=True)
    host_marker = tmp_path / f"host-marker-{secrets.token_hex(4)}"
    hook = f"touch {host_marker} /tmp/hook-ran hook-ran $HOME/hook-ran"
    (folder / ".claude" / "settings.json").write_text(
        json.dumps(
            {
                "hooks": {
                    event: [{"matcher": "*", "hooks": [{"type": "command", "command": hook}]}]
                    for event in ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop")
                },
                "paddock": {"hooks": {"allow_folder_hooks": True}},
            }
        )
    )
    (folder / ".mcp.json").write_text(json.dumps({"mcpServers": {"x": {"command": "sh", "args": ["-c", hook]}}}))
    (folder / "notes.txt").write_text("hello\n")
    return folder, host_marker


def _assert_no_marker(folder: Path, host_marker: Path, api: MessagesAPI) -> None:
    assert not host_marker.exists(), "a folder hook ran on the host"
    assert not (folder / "hook-ran").exists(), "a folder hook ran (it wrote into the workspace)"
    assert not Path("/tmp/hook-ran").exists()
    results = json.dumps(api.tool_results())
    assert "HOOKSEEN" not in results, f"a folder hook ran in the guest: {results}"
    assert "[exit status 0]" in results  # the guest check itself did run


@pytest.mark.vm
@pytest.mark.parametrize("trust", [False, True], ids=["untrusted", "trusted-but-hooks-off"])
def test_folder_hooks_never_run_headless(tmp_path: Path, trust: bool) -> None:
    folder, marker = _hooked_folder(tmp_path)
    with MessagesAPI([tool("run_command", command=GUEST_CHECK), text("done")]) as api:
        env = {**os.environ, "ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": f"test-{secrets.token_hex(8)}"}
        argv = [sys.executable, "-m", "paddock.cli", "run", "--folder", str(folder), "--new", "look around"]
        if trust:
            argv.insert(4, "--yes")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr
        _assert_no_marker(folder, marker, api)
    if not trust:
        assert "not trusted" in proc.stderr and ".claude/settings.json" in proc.stderr
    assert TrustStore().is_trusted(folder) is trust


@pytest.mark.vm
def test_folder_hooks_never_run_with_the_apps_engine(tmp_path: Path, engine: Engine) -> None:
    folder, marker = _hooked_folder(tmp_path)
    with MessagesAPI([tool("run_command", command=GUEST_CHECK), text("done")]) as api:
        os.environ["ANTHROPIC_BASE_URL"] = api.url
        try:

            async def session() -> None:
                async with Sandbox.open(folder) as sandbox:
                    agent = AssistantSession(
                        sandbox,
                        AnthropicProvider(f"test-{secrets.token_hex(8)}"),
                        ConversationStore(folder, tmp_path / "store"),
                    )
                    await agent.send("look around")

            engine.run(session(), timeout=300)
        finally:
            del os.environ["ANTHROPIC_BASE_URL"]
        _assert_no_marker(folder, marker, api)


def test_trust_is_bound_to_the_folder_identity(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trust.json")
    folder = tmp_path / "f"
    folder.mkdir()
    assert not store.is_trusted(folder)
    store.trust(folder)
    assert store.is_trusted(folder)
    shutil.rmtree(folder)
    folder.mkdir()  # same path, another folder
    assert not store.is_trusted(folder)
    store.trust(folder)
    assert store.revoke(folder) and not store.is_trusted(folder)


def test_a_denied_folder_is_refused_with_the_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    env = {**os.environ, "HOME": str(home)}
    for folder in (home / ".ssh", home):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "paddock.cli",
                "sandbox",
                "exec",
                "--folder",
                str(folder),
                "--",
                "cat",
                ".ssh/id_rsa",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert proc.returncode == 125
        assert "never shares" in proc.stderr and "Traceback" not in proc.stderr
    assert not live_processes()


def test_a_malformed_managed_policy_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    import paddock.policy.effective as effective

    bad = tmp_path / "etc" / "managed-policy.json"
    bad.parent.mkdir()
    bad.write_text('{"mounts": {"allowed_roots": ')
    monkeypatch.setattr(effective, "MANAGED_FILE", bad)
    # The test runs as an ordinary user: that user stands in for the administrator who owns it.
    admin_check = effective.check_admin_owned
    monkeypatch.setattr(effective, "check_admin_owned", lambda path, _uid=0: admin_check(path, os.geteuid()))
    folder = tmp_path / "w"
    folder.mkdir()
    with pytest.raises(SandboxFailed, match="No session can start") as info:
        engine.run(Sandbox.boot(folder), timeout=60)
    assert str(bad) in str(info.value) and "not valid JSON" in str(info.value)
    assert not live_processes(), "a VM was started despite the broken policy"
