"""Render Paddock's window to PNGs: ``scripts/screenshot.sh`` writes ``docs/screenshot.png`` (the
README's picture); ``--all DIR`` writes every view to DIR (``docs/screenshots``, shown in
docs/WINDOW.md), light (``NAME.png``) and dark (``NAME-dark.png``), at 1280 × 800;
``--settings OUT.png``: the settings' Model page with the shipped example policy;
``--schedules OUT.png``: the schedule view with two sample schedules and their history (written to
a throwaway data folder; nothing runs); ``--summary OUT.png``: the session summary.

Runs the real window on a real X server (Xvfb, started by the shell wrapper) and fills it with a
scripted session: the events are the ones the engine publishes, fed straight to the window, and
the notes and past conversations are written to a throw-away data folder through the same stores
the app uses, so no VM or model is needed to draw it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("PADDOCK_DATA_DIR", tempfile.mkdtemp(prefix="paddock-shot-"))
os.environ.setdefault("ANTHROPIC_API_KEY", "screenshot-placeholder")  # skips the first-run key page

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

from paddock.assistant.loop import ConversationStore, Finished, TextDelta, ToolCalled, ToolFinished, ToolOutput
from paddock.assistant.memory import MemoryStore
from paddock.core.engine import Engine
from paddock.desk import Activity, Change, SessionSummary
from paddock.desk.desk import Desk, DeskEvent, FolderCheck, Notice, SandboxState, SandboxStatus
from paddock.desk.history import History
from paddock.desk.plain import conflicts_notice
from paddock.desk.previews import Preview, checked_png
from paddock.desk.words import audit_rows
from paddock.llm import Usage
from paddock.session.doctor import Check, FirstRun
from paddock.ui import theme
from paddock.ui.window import MainWindow

PICTURES = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "previews"
EXAMPLE = Path(__file__).resolve().parent.parent / "packaging" / "policy" / "managed-policy.example.json"
FOLDER = Path.home() / "Documents" / "Sales 2026"  # shown as written; nothing is opened there
TABLE_ANSWER = (Path(__file__).resolve().parent / "screenshot_answer.md").read_text()  # the answer shown streamed


def settle(app: QApplication, seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def save(widget: QWidget, out: Path) -> bool:
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = widget.grab().save(str(out))
    print(f"wrote {out}" if ok else f"could not write {out}")
    return ok


def _wait_idle(app: QApplication, window: MainWindow) -> None:
    deadline = time.monotonic() + 30
    while not window.bridge.idle and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.05)


def settings_shot(out: Path) -> int:
    from paddock.policy import load

    app = QApplication(sys.argv[:1])
    theme.apply(app, Qt.ColorScheme.Light)
    engine = Engine()
    owner = EXAMPLE.stat().st_uid
    desk = Desk(policy_loader=lambda **kw: load(managed=EXAMPLE, admin_uid=owner, **kw))
    desk.model = "local:llama3.1"
    window = MainWindow(engine, desk)
    window.open_settings()
    dialog = window.settings
    assert dialog is not None
    dialog.resize(860, 420)
    deadline = time.monotonic() + 30
    while (not window.bridge.idle or dialog.endpoint_table.rowCount() == 0) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.05)
    settle(app)
    ok = save(dialog, out)
    dialog.close()
    window.close()
    engine.close()
    return 0 if ok else 1


def schedules_shot(out: Path) -> int:
    from datetime import datetime, timedelta

    from paddock.schedule import Run, ScheduleStore
    from paddock.ui.schedules import ScheduleDialog

    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="paddock-shot-config-")  # no real timers touched
    store = ScheduleStore()
    folder = str(Path("~/Documents/Invoices"))  # shown as written; nothing is opened
    week = store.add(
        folder=folder,
        when="every monday 09:00",
        on_calendar="Mon *-*-* 09:00:00",
        task="Summarise the new invoices into summary.xlsx",
        created=datetime.now() - timedelta(days=40),
    )
    store.add(
        folder=folder,
        when="every month on the 1st 06:00",
        on_calendar="*-*-01 06:00:00",
        task="Move last month's paid invoices into paid/",
        created=datetime.now() - timedelta(days=1),
    )
    today = datetime.now().replace(hour=9, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday() + 14)
    for i, (outcome, why) in enumerate(
        (("finished", ""), ("failed", "the model service did not answer (503)"), ("finished", ""))
    ):
        t = monday + timedelta(weeks=i)
        ok = outcome == "finished"
        store.record(
            week.id,
            Run(
                started=t,
                finished=t + timedelta(minutes=4),
                outcome=outcome,
                why=why,
                summary="1 changed (summary.xlsx)" if ok else "",
                changes=["changed summary.xlsx"] if ok else [],
                answer="Added 6 new invoices (total 14,380.00) to summary.xlsx." if ok else "",
            ),
        )
    app = QApplication(sys.argv[:1])
    theme.apply(app, Qt.ColorScheme.Light)
    engine = Engine()
    window = MainWindow(engine, Desk())
    dialog = ScheduleDialog(window.bridge, window.schedules, None, window)
    dialog.resize(900, 600)
    dialog.show()
    deadline = time.monotonic() + 30
    while (not window.bridge.idle or dialog.history.count() == 0) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.05)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = dialog.grab().save(str(out))
    dialog.close()
    window.close()
    engine.close()
    print(f"wrote {out}" if ok else f"could not write {out}")
    return 0 if ok else 1


def summary_shot(out: Path) -> int:
    from paddock.desk import Change, SessionSummary

    app = QApplication(sys.argv[:1])
    theme.apply(app, Qt.ColorScheme.Light)
    engine = Engine()
    window = MainWindow(engine, Desk())
    window.resize(960, 640)
    window.show()
    deadline = time.monotonic() + 30
    while not window.bridge.idle and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.05)
    changes = [
        Change("report.docx", "changed"),
        Change("Sales 2026.xlsx", "changed"),
        Change("old drafts/plan.docx", "deleted"),
        Change("chart.png", "created"),
        Change(".vscode/tasks.json", "created", "editor settings that can run commands when the folder is opened"),
    ]
    summary = SessionSummary(Path("~/Documents/Sales 2026"), changes, 0, Path("/nonexistent"), start_point=3)
    window.summary.show_summary(summary)
    window.stack.setCurrentWidget(window.summary)
    window.summary.changes.setCurrentRow(0)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    _wait_idle(app, window)
    window.stack.setCurrentWidget(window.summary)  # the first-run check may have shown the folders meanwhile
    settle(app, 0.2)
    ok = window.grab().save(str(out))
    window.close()
    engine.close()
    print(f"wrote {out}" if ok else f"could not write {out}")
    return 0 if ok else 1


# ---------------------------------------------------------------------- the views


def _feed(window: MainWindow, events: list[DeskEvent]) -> None:
    for ev in events:
        window._on_event(ev)


def _past_conversations() -> None:
    """Two earlier conversations on the folder and the one in use, through the app's own stores."""
    history = History(FOLDER)
    for first in ("Which customers ordered less this year than last?", "Turn the price list into a PDF"):
        ConversationStore(FOLDER).save(
            [
                {"role": "user", "content": [{"type": "text", "text": first}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
            ]
        )
        history.put_aside()
        time.sleep(0.01)
    ConversationStore(FOLDER).save(
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Add up the three monthly sales files and write a short report with a chart.",
                    }
                ],
            }
        ]
    )


def conversation(app: QApplication, window: MainWindow, *, details: bool = False) -> None:
    window.chat.reset(FOLDER)
    window.stack.setCurrentWidget(window.chat)
    _feed(window, [SandboxStatus(SandboxState.READY, "")])
    window.chat.add_user("Add up the three monthly sales files and write a short report with a chart.")
    calls = [
        ("c1", "list_files", {}, "jan.csv  (2048 bytes)\nfeb.csv  (2110 bytes)\nmar.csv  (2301 bytes)", 0.3),
        (
            "c2",
            "run_command",
            {
                "purpose": "Add up the three monthly sales files and write the report, workbook, slides and chart",
                "command": "python3 make_report.py jan.csv feb.csv mar.csv",
            },
            "$ python3 make_report.py jan.csv feb.csv mar.csv\n[exit status 0]\n--- stdout ---\nread 3 files, "
            "1,204 rows\nwrote report.docx, sales.xlsx, deck.pptx, chart.png\n\n--- stderr ---\n",
            6.2,
        ),
        ("c3", "write_file", {"path": "summary.md", "content": "# Sales, first quarter\n…"}, "# Sales…", 0.2),
    ]
    events: list[DeskEvent] = []
    for cid, name, args, output, took in calls:
        events += [ToolCalled(cid, name, args, ""), ToolFinished(cid, name, False, "", output, took)]
    events += [TextDelta(TABLE_ANSWER), Finished(TABLE_ANSWER, Usage(1200, 300), 4)]
    events += [Activity("written", "summary.md", "summary.md (1 KB)", time.time() - 35)]
    _feed(window, events)
    window.chat.add_turn_undo(4)  # "Undo this": back to the restore point made before the message
    window.chat.activity.add_previews(_guest_pictures())
    if details:
        window.chat.cards["c2"].toggle.click()
        _sidebar(app, window)
        return
    window.chat.add_user("Now make the same chart for every region, one file each.")
    command = "python3 charts_by_region.py --all"
    _feed(
        window,
        [
            ToolCalled("c4", "run_command", {"purpose": "Draw one sales chart per region", "command": command}, ""),
            Activity("started", "e4", command, time.time() - 14),
            ToolOutput(
                "c4", "North: 1,402 rows → north.png\nSouth: 988 rows → south.png\nEast: 1,117 rows → east.png\n"
            ),
            Activity("written", "north.png", "north.png (35 KB)", time.time() - 9),
            Activity("written", "south.png", "south.png (33 KB)", time.time() - 5),
            Activity("written", "east.png", "east.png (36 KB)", time.time() - 1),
            Activity("writing", "west.png", "west.png (12 KB)", time.time()),
        ],
    )
    card = window.chat.cards["c4"]
    card.started -= 14
    card._tick()
    window.chat.set_working(True)
    _sidebar(app, window)
    bar = window.chat.scroller.verticalScrollBar()
    bar.setValue(bar.maximum())
    settle(app, 0.2)


def _guest_pictures() -> list[Preview]:
    """Pictures the sandbox drew of the files (saved by tests/ui/test_previews.py from a real VM)."""
    out = []
    for path in sorted(PICTURES.glob("*.png"), reverse=True):
        if re.search(r"\.p[0-9]+\.png$", path.name):
            continue  # a later page, read with its first (NAME.png, NAME.p2.png, ...)
        data = path.read_bytes()
        size = checked_png(data)
        name = path.name.removesuffix(".png")
        more = [PICTURES / f"{name}.p{n}.png" for n in range(2, 9)]
        pages = tuple(p.read_bytes() for p in more if p.exists())
        if size is not None and all(checked_png(p) for p in pages):
            out.append(Preview(name, data, *size, more=pages))
    return out


def preview(app: QApplication, window: MainWindow) -> QWidget:
    conversation(app, window, details=True)
    panel = window.chat.activity
    [item] = panel.previews.findItems("report.docx", Qt.MatchFlag.MatchExactly)
    panel.previews.itemActivated.emit(item)
    assert panel.large is not None
    return panel.large


def _sidebar(app: QApplication, window: MainWindow) -> None:
    """The past conversations, once the window has asked the (closed) desk for them."""
    _wait_idle(app, window)
    settle(app, 0.1)
    window.chat.set_conversations(History(FOLDER).rows())
    settle(app)


def first_run(app: QApplication, window: MainWindow) -> None:
    window.stack.setCurrentWidget(window.welcome)
    window.welcome.show_first_run(
        FirstRun(
            True,
            [
                Check("QEMU", True, "QEMU 8.2"),
                Check("Bubblewrap", True, "/usr/bin/bwrap"),
                Check("Folder sharing (virtiofsd)", True, "virtiofsd"),
                Check("Sandbox image", False, "no guest image in /var/cache/paddock/guest", "build it"),
                Check("Egress gateway (mitmproxy)", True, "mitmdump", required=False),
                Check("Accelerator", True, "software emulation (TCG)"),
                Check("Keychain", True, "GNOME Keyring"),
            ],
        )
    )


def folder_trust(app: QApplication, window: MainWindow) -> None:
    window.show_folders()
    window.folders.set_recent([FOLDER, FOLDER.parent / "Board meeting", FOLDER.parent / "Invoices 2025"])
    window.folders.ask_trust(FolderCheck(FOLDER, True, "", False, [".claude/settings.json", "CLAUDE.md"]))


def summary(app: QApplication, window: MainWindow) -> None:
    changes = [
        Change("report.docx", "created"),
        Change("sales.xlsx", "created"),
        Change("deck.pptx", "created"),
        Change("chart.png", "created"),
        Change("data/cleaned.csv", "changed"),
        Change(".git/hooks/pre-commit", "created", "a git hook: git runs it on your computer"),
    ]
    pictures = tuple(p for c in changes for p in _guest_pictures() if p.path == c.path)  # drawn in the sandbox
    window._on_event(SessionSummary(FOLDER, changes, 1, Path(tempfile.mkdtemp()), 3, pictures))
    window.summary.changes.setCurrentRow(4)  # data/cleaned.csv: how its lines changed (no store here: shown as made)
    _wait_idle(app, window)
    settle(app)
    window.summary.message.clear()
    window.summary.show_diff(
        "--- before the session\n+++ now\n@@ -1,4 +1,4 @@\n month,region,sales\n"
        "-2026-01,north,41200\n+2026-01,North,41200\n 2026-02,North,44750\n"
        "-2026-03,Nort,48900\n+2026-03,North,48900"
    )


def problem(app: QApplication, window: MainWindow) -> None:
    conversation(app, window, details=True)
    _feed(window, [SandboxStatus(SandboxState.FAILED, "The sandbox stopped: QEMU was killed by signal 9.")])


def host_dropped(app: QApplication, window: MainWindow) -> None:
    conversation(app, window, details=True)  # a session on a sandbox host whose connection dropped
    gone = "The connection to the sandbox host 'lab-1' dropped."
    _feed(
        window,
        [
            SandboxStatus(SandboxState.FAILED, gone),
            Notice(conflicts_notice(["report.md"])),
            SandboxStatus(SandboxState.STARTING, f"{gone} Reconnecting to lab-1…"),
        ],
    )
    bar = window.chat.scroller.verticalScrollBar()
    for _ in range(10):  # to the end, once the answer above has been laid out: the note of the version kept
        settle(app, 0.05)
        bar.setValue(bar.maximum())


def notes(app: QApplication, window: MainWindow) -> QWidget:
    store = MemoryStore()
    for old in store.list(include_expired=True):  # the same three notes in each scheme's picture
        store.forget(old.id)
    store.add("Reports go in Word, with a table per month and the chart under it", session="s1", folder=FOLDER)
    store.add("Amounts in euros, no decimals", session="s2", folder=FOLDER.parent / "Invoices 2025", ttl_days=12)
    shared = store.add("Call the regions North, South, East and West", session="s3", folder=FOLDER, ttl_days=3)
    store.share(shared.id)
    window.show_folders()
    window.open_notes()
    assert window.notes is not None
    window.notes.resize(860, 340)
    deadline = time.monotonic() + 30
    while window.notes.table.rowCount() < 3 and time.monotonic() < deadline:  # the notes, once loaded
        app.processEvents()
        time.sleep(0.05)
    return window.notes


def link(app: QApplication, window: MainWindow) -> QWidget:
    from PySide6.QtCore import QUrl

    conversation(app, window, details=True)
    answer = window.chat._answer
    assert answer is not None
    answer.ask_to_open(QUrl("https://dashboard.example.com/sales?q=1"))
    assert answer.link_box is not None
    return answer.link_box


Shot = Callable[[QApplication, MainWindow], QWidget | None]
VIEWS: dict[str, Shot] = {
    "first-run": first_run,
    "folder-trust": folder_trust,
    "conversation": conversation,
    "card-details": lambda app, w: conversation(app, w, details=True),
    "preview": preview,
    "summary": summary,
    "notes": notes,
    "link-question": link,
    "problem": problem,
    "host-dropped": host_dropped,
    "settings-allowed": lambda app, w: _settings(app, w, 2),
    "settings-activity": lambda app, w: _settings(app, w, 3),
    "settings-help": lambda app, w: _settings(app, w, 4),
}


def _settings(app: QApplication, window: MainWindow, tab: int) -> QWidget:
    """Settings with the shipped example policy (an organisation's), on one of its tabs."""
    from paddock.policy import load
    from paddock.ui.bridge import Bridge
    from paddock.ui.settings import SettingsDialog

    owner = EXAMPLE.stat().st_uid
    desk = Desk(policy_loader=lambda **kw: load(managed=EXAMPLE, admin_uid=owner, **kw))
    dialog = SettingsDialog(Bridge(window.bridge.engine, desk), window)
    window.settings = dialog
    dialog.resize(900, 560)
    dialog.tabs.setCurrentIndex(tab)
    dialog.show()
    deadline = time.monotonic() + 30
    while dialog.policy_table.rowCount() == 0 and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.05)
    if tab == 3:
        dialog._show_audit(audit_rows(_audit_records()))
    if tab == 4:
        dialog.support_message.setText(
            "Copied, and saved as ~/.local/share/paddock/support/paddock-support-20261203-161502.txt. Paste them "
            "into your message to whoever looks after Paddock, or attach that file."
        )
    settle(app)
    return dialog


def _audit_records() -> list[dict[str, object]]:
    """A short session's records, as the auditor writes them (shown, not written to a log)."""
    t = time.time() - 600
    folder = str(FOLDER)
    kinds: list[tuple[str, dict[str, object]]] = [
        ("session.started", {"paddock.folder": folder}),
        ("turn", {"paddock.turn": 1}),
        ("tool.call", {"paddock.tool.summary": "Add up the sales in the three monthly files"}),
        ("guest.process.started", {"process.command_args": ["sh", "-c", "python3 make_report.py"]}),
        ("guest.file.written", {"file.path": "report.docx", "file.size": 38120}),
        ("guest.file.written", {"file.path": "chart.png", "file.size": 35210}),
        ("guest.process.exited", {"process.exit.code": 0}),
        ("tool.result", {"paddock.tool.is_error": False}),
        ("egress.decision", {"paddock.egress.allowed": False, "server.address": "pastebin.com", "url.path": "/api"}),
        (
            "egress.decision",
            {"paddock.egress.allowed": True, "server.address": "api.example.com", "url.path": "/v1/rates"},
        ),
        ("undo.point", {}),
        ("session.ended", {"paddock.outcome": "finished"}),
    ]
    return [
        {"time_unix": t + 20 * i, "kind": kind, "session_id": "4f2a9c1e" * 4, "attributes": attributes}
        for i, (kind, attributes) in enumerate(kinds)
    ]


def render(out_dir: Path, names: list[str], schemes: tuple[str, ...] = ("light", "dark")) -> int:
    app = QApplication(sys.argv[:1])
    engine = Engine()
    _past_conversations()
    failed = 0
    for scheme in schemes:
        theme.apply(app, Qt.ColorScheme.Dark if scheme == "dark" else Qt.ColorScheme.Light)
        suffix = "-dark" if scheme == "dark" else ""
        for name in names:
            window = MainWindow(engine, Desk())
            window.resize(1280, 800)  # the smallest screen the design is for
            window.show()
            _wait_idle(app, window)
            settle(app, 0.2)
            shown = VIEWS[name](app, window)
            settle(app)
            target: QWidget = shown if shown is not None else window
            failed += not save(target, out_dir / f"{name}{suffix}.png")
            for dialog in (window.notes, window.settings):
                if dialog is not None:
                    dialog.close()
            window.close()
    engine.close()
    return 1 if failed else 0


def main(out: Path) -> int:  # the README's picture: a conversation with a report and a running command
    code = render(out.parent, ["conversation"], ("light",))
    produced = out.parent / "conversation.png"
    if code == 0 and produced != out:
        produced.replace(out)
    return code


if __name__ == "__main__":
    one = {
        "--settings": (settings_shot, "docs/settings-models.png"),
        "--summary": (summary_shot, "docs/summary-undo.png"),
        "--schedules": (schedules_shot, "docs/screenshots/schedules.png"),
    }
    if sys.argv[1:2] and sys.argv[1] in one:
        shot, default = one[sys.argv[1]]
        sys.exit(shot(Path(sys.argv[2] if len(sys.argv) > 2 else default)))
    if sys.argv[1:2] == ["--all"]:
        sys.exit(render(Path(sys.argv[2] if len(sys.argv) > 2 else "docs/screenshots"), list(VIEWS)))
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")))
