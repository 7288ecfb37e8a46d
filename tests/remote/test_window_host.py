"""A window session on a sandbox host policy assigns to the person (the least loaded that answers),
its file coming back to the folder and into the session's summary, and a dropped connection said
in plain words and reconnected.

Real: sshd, paramiko, the VM (as the server account), the keychain. Fake: the model service only
(``tests.fakes.messages_api``, a loopback Messages API with scripted steps).
"""

from __future__ import annotations

import asyncio
import getpass
import secrets
from pathlib import Path

import pytest

from paddock.core.engine import Engine
from paddock.desk import Desk, SandboxState, SandboxStatus, SessionSummary
from paddock.llm import AnthropicProvider
from tests.fakes.messages_api import MessagesAPI, text, tool
from tests.remote.conftest import SshHost

pytestmark = [pytest.mark.vm, pytest.mark.timeout(600)]
SLOTS = "~/.local/state/paddock-remote/slots"


def test_a_window_session_on_the_assigned_host_reconnects_after_a_drop(
    test_host: SshHost, tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    me = [getpass.getuser()]
    hosts = (
        test_host.host("down", port=1, who=me),  # does not answer: skipped
        test_host.host("busy", who=me),  # paddock-remote, one of its two sessions taken below
        test_host.host("free", account="paddock-remote2", who=me),
        test_host.host("elsewhere", account="paddock-remote2", who=["someone-else"]),  # not for this person
    )
    _code, holder = test_host.shell(  # one of busy's two sessions taken: a process holds its slot's lock
        f"mkdir -p {SLOTS} && cd {SLOTS} && (setsid flock 0.lock sleep 300 </dev/null >/dev/null 2>&1 & echo $!)"
    )
    events: list[object] = []
    steps = [tool("run_command", command="echo made-on-the-host > made.txt"), text("Done."), text("Again.")]
    try:
        with MessagesAPI(steps) as api:
            monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
            desk = Desk(
                policy_loader=lambda **_kw: test_host.policy(tmp_path, *hosts),
                provider_factory=lambda t, _k: AnthropicProvider(f"test-{secrets.token_hex(6)}", model=t.model),
            )
            desk.subscribe(events.append)

            async def session() -> None:
                await desk.trust(folder)
                await desk.open(folder)
                assert desk.sandbox_state is SandboxState.READY
                assert await desk.send("make a file") == "Done."
                assert (folder / "made.txt").read_text() == "made-on-the-host\n"
                sandbox = desk._open.sandbox if desk._open else None
                assert sandbox is not None and sandbox.host_name == "free"
                sandbox.vm.connection.transport.sock.close()  # type: ignore[union-attr]
                for _ in range(300):
                    if desk._reconnecting is not None:
                        break
                    await asyncio.sleep(0.1)
                assert desk._reconnecting is not None, "the drop was not noticed"
                await desk._reconnecting
                assert desk.sandbox_state is SandboxState.READY
                assert await desk.send("again") == "Again."
                await desk.finish()
                await desk.close()  # and the sandbox woken for the next folder

            engine.run(session(), timeout=400)
    finally:
        test_host.shell(f"kill -- -{int(holder)} || true")  # its process group: flock and its sleep
    said = [e.detail for e in events if isinstance(e, SandboxStatus)]
    assert any(d.startswith("Ready (on free") for d in said), said
    dropped = [d for d in said if "dropped" in d]
    assert dropped and "Reconnecting to free" in dropped[-1], said
    summaries = [e for e in events if isinstance(e, SessionSummary)]
    assert summaries and "made.txt" in [c.path for c in summaries[-1].changes], summaries
