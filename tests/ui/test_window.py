"""The desktop window driving the real engine.

Real: the engine thread, the sandbox (QEMU, virtiofs, gRPC), the keychain (gnome-keyring in
the test's D-Bus session), policy, the audit log. The one fake is the model service: the
loopback Messages API server in ``tests/fakes`` (the SDK reaches it through its standard
``ANTHROPIC_BASE_URL``). The native folder dialog is not opened: tests call what it calls.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from paddock.core.engine import Engine
from paddock.credentials import MODEL_KEY, Keychain
from paddock.desk import jargon_in
from paddock.desk.desk import SandboxState
from paddock.ui.cards import ToolCard
from tests.fakes.messages_api import MessagesAPI, text, tool
from tests.framework.desk import BOOT_MS, OpenScripted, open_window, say, wait_window


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    Keychain().remove(MODEL_KEY)
    yield f"test-{secrets.token_hex(8)}"  # generated per test; never a real key
    Keychain().remove(MODEL_KEY)


def _left():  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


@pytest.mark.vm
def test_first_run_choose_trust_chat_in_the_vm_and_summary(
    qtbot: QtBot, engine: Engine, guest_image: object, tmp_path: Path, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "Quarterly"
    (folder / ".claude").mkdir(parents=True)
    (folder / ".claude" / "settings.json").write_text('{"paddock": {}}\n')
    (folder / "notes.txt").write_text("figures: 10 32\n")
    command = (
        "awk '{print $2+$3}' notes.txt > total.txt && cat total.txt && mkdir -p .git/hooks && "
        "printf '#!/bin/sh\\necho gotcha\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit"
    )
    steps = [tool("run_command", command=command), text("I added the figures up: the total is in total.txt.")]
    with MessagesAPI(steps) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        window = open_window(qtbot, engine)

        # First run: the key goes to the real keychain and is never shown again.
        welcome = window.welcome
        qtbot.waitUntil(lambda: welcome.key_box.isVisible() and welcome.checks.text() != "")
        assert "Sandbox system" in welcome.checks.text()
        assert not welcome.continue_button.isEnabled()
        qtbot.keyClicks(welcome.key_edit, api_key)
        qtbot.mouseClick(welcome.findChild(type(window.chat.send_button), "saveKey"), _left())
        qtbot.waitUntil(welcome.continue_button.isEnabled)
        assert Keychain().get(MODEL_KEY) == api_key
        assert welcome.key_edit.text() == ""
        qtbot.mouseClick(welcome.continue_button, _left())
        assert window.stack.currentWidget() is window.folders

        # Choose the folder: not trusted yet, so the question names what would change behaviour.
        window.choose_folder(folder)
        qtbot.waitUntil(window.folders.trust_box.isVisible)
        assert ".claude/settings.json" in window.folders.trust_text.text()
        qtbot.mouseClick(window.folders.findChild(type(window.chat.send_button), "trustYes"), _left())
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.chat)
        qtbot.waitUntil(lambda: window.desk.sandbox_state is SandboxState.READY, timeout=BOOT_MS)
        assert "ready" in window.chat.status.text()

        # Chat: a command that runs in the real VM, shown as a card; the answer streams in.
        say(qtbot, window, "Add up the figures in notes.txt")
        wait_window(
            qtbot, window, lambda: window.chat._answer is not None and "total.txt" in window.chat._answer.text()
        )
        qtbot.waitUntil(lambda: not window.desk.busy and window.chat.send_button.isEnabled())  # Finished drawn too
        [card] = window.chat.cards.values()
        assert isinstance(card, ToolCard)
        assert card.summary.text() == "Ran a command"
        assert not card.detail.isVisible()
        qtbot.mouseClick(card.toggle, _left())
        assert card.detail.isVisible() and "awk" in card.detail.toPlainText()
        assert "What it printed:\n42" in card.detail.toPlainText()
        assert (folder / "total.txt").read_text().strip() == "42"  # written by the guest, seen on the host
        assert api.headers[0].get("authorization") == f"Bearer {api_key}"
        assert window.chat.send_button.isEnabled() and not window.chat.stop_button.isEnabled()

        # Summary: created files, and the git hook flagged with Revert.
        qtbot.mouseClick(window.chat.finish_button, _left())
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.summary, timeout=60_000)
        listed = [window.summary.changes.item(i).text() for i in range(window.summary.changes.count())]
        assert "New: total.txt" in listed and "New: .git/hooks/pre-commit" in listed
        assert window.summary.warning.isVisible()
        assert set(window.summary.revert_buttons) == {".git/hooks/pre-commit"}
        assert "0 questions" in window.summary.counts.text()
        qtbot.mouseClick(window.summary.revert_buttons[".git/hooks/pre-commit"], _left())
        qtbot.waitUntil(lambda: not (folder / ".git" / "hooks" / "pre-commit").exists())
        qtbot.waitUntil(lambda: "Deleted" in window.summary.message.text())
        assert (folder / "total.txt").exists()  # only what was asked for was reverted
        # Undo everything: back to the session's restore point (the folder as it was when opened).
        assert window.summary.undo_all.isVisible()
        qtbot.mouseClick(window.summary.undo_all, _left())
        qtbot.waitUntil(lambda: "undone" in window.summary.message.text(), timeout=60_000)
        assert not (folder / "total.txt").exists() and (folder / "notes.txt").read_text() == "figures: 10 32\n"
        assert not (folder / ".git").exists()
        assert window.desk.folder is None and window.desk.sandbox_state is SandboxState.STOPPED


@pytest.mark.vm
def test_stop_really_stops_and_a_dead_vm_can_be_restarted(
    qtbot: QtBot, engine: Engine, scripted_window: OpenScripted
) -> None:
    steps = [
        tool(
            "run_command", command="echo started; echo started > started.txt; sleep 300; echo finished > finished.txt"
        ),
        tool("write_file", path="again.txt", content="again"),
        text("Done again."),
    ]
    opened = scripted_window(steps)
    window, folder = opened.window, opened.folder

    say(qtbot, window, "Take your time")
    wait_window(qtbot, window, lambda: (folder / "started.txt").exists())
    # The running card: its time so far, and the command's output as it comes from the guest.
    [card] = window.chat.cards.values()
    assert card.summary.text() == "Running a command"
    qtbot.waitUntil(lambda: card.tail.text() == "started" and card.elapsed.text() != "", timeout=30_000)
    assert window.chat.stop_button.isEnabled()
    # The activity panel, from the guest's live events: the command is running now.
    running = window.chat.activity.running
    qtbot.waitUntil(lambda: running.count() == 1, timeout=30_000)
    assert "sleep 300" in running.item(0).text() and not window.chat.activity.idle.isVisible()
    qtbot.mouseClick(window.chat.stop_button, _left())
    qtbot.waitUntil(lambda: not window.desk.busy, timeout=30_000)
    assert not window.chat.stop_button.isEnabled()
    sandbox = window.desk._open.sandbox if window.desk._open else None
    assert sandbox is not None
    out, _, _ = engine.run(sandbox.guest.run(["sh", "-c", "ps -eo args | grep -c '[s]leep 300'"]), timeout=60)
    assert out.decode().strip() == "0", "the stopped command is still running in the guest"
    assert not (folder / "finished.txt").exists()

    # The VM dies: the window says so, stays usable, and Restart brings a new sandbox.
    os.kill(sandbox.vm.pids["qemu"], signal.SIGKILL)
    qtbot.waitUntil(lambda: window.desk.sandbox_state is SandboxState.FAILED, timeout=30_000)
    qtbot.waitUntil(window.chat.restart_button.isVisible)  # the event reaches the Qt thread a moment later
    assert "stopped working" in window.chat.status.text()
    assert not jargon_in(window.chat.status.text())  # "QEMU was killed by signal 9" is for support only
    assert window.problem.isVisible() and "QEMU" in window.problem.details
    assert not window.chat.send_button.isEnabled()
    qtbot.mouseClick(window.chat.restart_button, _left())
    qtbot.waitUntil(lambda: window.desk.sandbox_state is SandboxState.READY, timeout=BOOT_MS)
    say(qtbot, window, "Try again")
    wait_window(qtbot, window, lambda: (folder / "again.txt").exists())
    files = window.chat.activity.files
    qtbot.waitUntil(lambda: files.count() > 0 and "again.txt (5 bytes)" in files.item(0).text(), timeout=30_000)
    assert running.count() == 0 and window.chat.activity.idle.isVisible()  # the stopped command is gone
    qtbot.waitUntil(lambda: not window.desk.busy, timeout=60_000)
    window.close()
    assert window.desk.folder is None


def test_a_folder_policy_denies_is_refused_with_the_reason(
    qtbot: QtBot, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(8)}")
    window = open_window(qtbot, engine)
    window.show_folders()
    window.choose_folder(Path.home() / ".ssh")
    qtbot.waitUntil(lambda: window.folders.error.text() != "")
    assert "can't be used" in window.folders.error.text()
    assert "never shares" in window.folders.error.text() or "does not exist" in window.folders.error.text()
    window.choose_folder(Path.home())
    qtbot.waitUntil(lambda: "never shares" in window.folders.error.text())
    assert window.stack.currentWidget() is window.folders and window.desk.folder is None


def test_settings_show_keys_policy_and_audit(qtbot: QtBot, engine: Engine, api_key: str) -> None:
    window = open_window(qtbot, engine)
    window.open_settings()
    dialog = window.settings
    assert dialog is not None
    qtbot.waitUntil(lambda: "No key" in dialog.key_status.text())
    qtbot.keyClicks(dialog.new_key, api_key)
    qtbot.mouseClick(dialog.findChild(type(window.chat.send_button), "replaceKey"), _left())
    qtbot.waitUntil(lambda: "A key is stored" in dialog.key_status.text())
    assert Keychain().get(MODEL_KEY) == api_key and dialog.new_key.text() == ""
    assert api_key not in dialog.key_status.text()
    qtbot.waitUntil(lambda: dialog.policy_table.rowCount() > 5)
    rows = {dialog.policy_table.item(i, 0).text() for i in range(dialog.policy_table.rowCount())}
    assert "The assistant cannot reach the internet." in rows  # in sentences, not the policy's keys
    assert any(r.startswith("Paddock never shares these places with the assistant: ") for r in rows)
    assert not any("_" in r.split(":")[0] for r in rows)
    qtbot.waitUntil(lambda: dialog.endpoint_table.rowCount() == 2)  # no policy: the two built-in endpoints
    endpoints = [dialog.endpoint_table.item(i, 0).text() for i in range(2)]
    assert endpoints == ["anthropic", "openai"]
    assert "key stored" in dialog.endpoint_table.item(0, 3).text()
    assert [dialog.key_endpoint.itemText(i) for i in range(dialog.key_endpoint.count())] == ["anthropic", "openai"]
    qtbot.mouseClick(dialog.findChild(type(window.chat.send_button), "removeKey"), _left())
    qtbot.waitUntil(lambda: "No key" in dialog.key_status.text())
    assert Keychain().get(MODEL_KEY) is None
    dialog.close()
