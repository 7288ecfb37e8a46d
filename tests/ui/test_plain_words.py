"""Plain words everywhere: drive the window's flows and its error paths, then scan every string a
person can see (texts, tooltips, accessible names, placeholders, titles, items) for jargon.

Real: the engine thread, the Desk, policy, the host checks, the keychain, the settings dialog.
The sandbox and the model are not started: their events (the ones ``Desk`` publishes, including
a VM killed by a signal and a model error) are fed to the window as the bridge delivers them, and
the error paths run real coroutines that raise on the engine thread.
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from paddock.assistant.loop import Failed, Finished, TextDelta, ToolCalled, ToolFinished
from paddock.core.engine import Engine
from paddock.core.errors import PaddockError
from paddock.desk import (
    JARGON,
    Activity,
    Change,
    Notice,
    SandboxState,
    SandboxStatus,
    SessionSummary,
    internal_in,
    jargon_in,
)
from paddock.llm import Usage
from paddock.session.doctor import Check, FirstRun
from paddock.ui.window import MainWindow
from tests.ui.strings import visible_strings

ISSUE_LIST = ("QEMU", "TCG", "KVM", "virtiofs", "gRPC", "signal", "exception", "traceback", "stderr")


class Scan:
    def __init__(self) -> None:
        self.found: dict[str, tuple[str, list[str]]] = {}
        self.seen = 0

    def __call__(self) -> None:
        for text, widget in visible_strings().items():
            self.seen += 1
            words = jargon_in(text) + internal_in(text)
            if words:
                self.found.setdefault(text, (widget, words))

    def report(self) -> str:
        return "\n".join(f"{w}: {words} in {text!r}" for text, (w, words) in self.found.items())


def _run_tool(window: MainWindow, cid: str, name: str, args: dict[str, object], output: str, error: bool) -> None:
    window._on_event(ToolCalled(cid, name, args, f"tool {name}"))
    window._on_event(ToolFinished(cid, name, error, f"tool {name}", output, 1.5))


def test_every_visible_string_is_plain(
    qtbot: QtBot, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(ISSUE_LIST) <= set(JARGON)
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(8)}")
    scan = Scan()
    from paddock.desk import Desk

    window = MainWindow(engine, Desk())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.welcome.checks.text() != "", timeout=30_000)
    scan()
    # Every check the host can report, as it would read when it fails (the doctor's own words
    # name QEMU, virtiofsd, mitmproxy…).
    failing = [
        Check("QEMU", False, "qemu-system-x86_64 not found", "install qemu-system-x86"),
        Check("Host tools", False, "bwrap not found", "apt install bubblewrap"),
        Check("Folder sharing (virtiofsd)", False, "cannot make a user namespace", "sysctl kernel.x=1"),
        Check("Sandbox image", False, "no guest image", "run ./build_vm.sh"),
        Check("Open files", False, "RLIMIT_NOFILE 1024", "raise it", required=False),
        Check("Egress gateway (mitmproxy)", False, "mitmdump not found", "pip install", required=False),
        Check("Accelerator", True, "software emulation (TCG): /dev/kvm missing", "join kvm"),
        Check("Keychain", False, "SecretService: D-Bus exception", "start it", required=False),
    ]
    window.welcome.show_first_run(FirstRun(False, failing))
    scan()

    # Folder choice: the trust question, and a refusal.
    folder = tmp_path / "Sales"
    (folder / ".claude").mkdir(parents=True)
    (folder / ".claude" / "settings.json").write_text("{}\n")
    window.show_folders()
    window.choose_folder(folder)
    qtbot.waitUntil(window.folders.trust_box.isVisible)
    scan()
    window.choose_folder(Path.home() / ".ssh")
    qtbot.waitUntil(lambda: window.folders.error.text() != "")
    scan()

    # A conversation, with every tool and the sandbox's own progress words.
    window.chat.reset(folder)
    window.stack.setCurrentWidget(window.chat)
    for detail in ("Starting QEMU with virtiofsd", "Connecting to the gRPC guest agent"):
        window._on_event(SandboxStatus(SandboxState.STARTING, detail))
        scan()
    window._on_event(SandboxStatus(SandboxState.READY, "Ready (software emulation (TCG))"))
    scan()
    window.chat.add_user("Make a chart of the sales")
    _run_tool(window, "c1", "run_command", {"command": "python3 chart.py"},
              "$ python3 chart.py\n[exit status 1]\n--- stdout ---\n\n--- stderr ---\nno data", True)  # fmt: skip
    _run_tool(window, "c2", "run_command", {"command": "sleep 9"},
              "$ sleep 9\n[was killed by signal 9]\n--- stdout ---\n\n--- stderr ---\n", True)  # fmt: skip
    for i, (name, args) in enumerate([
        ("read_file", {"path": "a.txt"}), ("write_file", {"path": "report.md", "content": "# R"}),
        ("edit_file", {"path": "report.md", "old_text": "R", "new_text": "S"}), ("list_files", {}),
        ("search_files", {"pattern": "total"}), ("read_document", {"path": "q.docx"}),
        ("load_skill", {"name": "xlsx"}), ("remember", {"note": "likes tables"}), ("mystery", {}),
    ]):  # fmt: skip
        _run_tool(window, f"t{i}", name, args, "done", False)
    for card in window.chat.cards.values():
        card.toggle.click()
    window._on_event(Activity("started", "e1", "python3 chart.py", 0.0))
    window._on_event(Activity("written", "chart.png", "chart.png (12 KB)", 0.0))
    window._on_event(TextDelta("Here is the chart."))
    window._on_event(Finished("Here is the chart.", Usage(1, 1), 1))
    scan()

    # Error paths: a killed VM, a model error, a notice, calls that raise on the engine thread.
    window._on_event(SandboxStatus(SandboxState.FAILED, "The sandbox stopped: QEMU was killed by signal 9."))
    assert window.problem.isVisible() and window.problem.copy_button.isVisible()
    scan()
    window._on_event(Failed("LLMError: the model API raised an exception (traceback in the log)"))
    window._on_event(Notice("gRPC stream closed: stderr said EOF", error=True))
    scan()

    async def boom() -> None:
        raise RuntimeError("virtiofsd: exception in thread; errno 24")

    async def internal() -> None:
        raise PaddockError("QEMU exited with code 1", hint="see stderr")

    errors: list[str] = []
    window.bridge.call(boom(), None, errors.append)
    qtbot.waitUntil(lambda: len(errors) == 1)
    qtbot.waitUntil(lambda: "virtiofsd" in window.problem.details)
    scan()
    window.problem.copy_button.click()
    assert "errno 24" in QGuiApplication.clipboard().text()  # the details go to support, not on screen
    window.bridge.call(internal(), None, errors.append)
    qtbot.waitUntil(lambda: len(errors) == 2)
    assert all(not jargon_in(e) for e in errors) and "Try again" in errors[0]
    window.chat.add_note(errors[1], error=True)
    scan()

    # The summary and the settings, every tab.
    summary = SessionSummary(folder, [Change("chart.png", "created"), Change(".git/hooks/pre-commit", "created",
                             "a git hook: git runs it on your computer")], 0, tmp_path / "backup")  # fmt: skip
    window._on_event(summary)
    scan()
    window.open_notes()
    qtbot.waitUntil(lambda: window.bridge.idle, timeout=30_000)
    scan()
    assert window.notes is not None
    window.notes.close()
    window.open_settings()
    dialog = window.settings
    assert dialog is not None
    qtbot.waitUntil(lambda: window.bridge.idle and dialog.policy_table.rowCount() > 0, timeout=30_000)
    scan()
    dialog.close()

    assert scan.seen > 100, "the scan saw too little of the window to mean anything"
    assert not scan.found, "jargon the window shows:\n" + scan.report()


def test_continue_stays_disabled_while_a_required_check_fails(qtbot: QtBot, engine: Engine) -> None:
    from paddock.desk import Desk

    window = MainWindow(engine, Desk())
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.welcome.checks.text() != "", timeout=30_000)
    welcome = window.welcome
    broken = FirstRun(False, [Check("Sandbox image", False, "no image", "build it"), Check("QEMU", True, "9.0")])
    welcome.show_first_run(broken)
    assert not welcome.continue_button.isEnabled()
    assert welcome.recheck_button.isVisibleTo(welcome)
    text = html.unescape(welcome.checks.text())
    assert "What to do: Ask your administrator to install Paddock's sandbox, then press Check again." in text
    assert text.count("What to do:") == 1  # only the failed check says what to do, in one sentence
    optional = FirstRun(False, [Check("Keychain", False, "locked", "unlock", required=False)])
    welcome.show_first_run(optional)
    assert welcome.continue_button.isEnabled()  # an optional check does not block
    welcome.show_first_run(FirstRun(True, []))
    assert not welcome.continue_button.isEnabled()  # the key is still missing
