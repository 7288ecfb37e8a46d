"""Render Paddock's main window to a PNG (for the README): ``scripts/screenshot.sh``;
``scripts/screenshot.sh --settings OUT.png`` renders the settings' Model page instead, with the
shipped example managed policy (an Anthropic endpoint and a local Ollama server);
``scripts/screenshot.sh --summary OUT.png`` renders the end-of-session summary (with undo).

Runs the real window on a real X server (Xvfb, started by the shell wrapper) and
fills the chat with a scripted conversation: the events are the ones the engine
publishes, fed straight to the window, so no VM or model is needed to draw it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PADDOCK_DATA_DIR", tempfile.mkdtemp(prefix="paddock-shot-"))
os.environ.setdefault("ANTHROPIC_API_KEY", "screenshot-placeholder")  # skips the first-run key page

from PySide6.QtWidgets import QApplication

from paddock.assistant.loop import Finished, TextDelta, ToolCalled, ToolFinished
from paddock.core.engine import Engine
from paddock.llm import Usage
from paddock.session.desk import Desk, DeskEvent, SandboxState, SandboxStatus
from paddock.ui.window import MainWindow

EXAMPLE = Path(__file__).resolve().parent.parent / "packaging" / "policy" / "managed-policy.example.json"


def settings_shot(out: Path) -> int:
    from paddock.policy import load

    app = QApplication(sys.argv[:1])
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
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    ok = dialog.grab().save(str(out))
    dialog.close()
    window.close()
    engine.close()
    print(f"wrote {out}" if ok else f"could not write {out}")
    return 0 if ok else 1


def summary_shot(out: Path) -> int:
    from paddock.session import Change, SessionSummary

    app = QApplication(sys.argv[:1])
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
    ok = window.grab().save(str(out))
    window.close()
    engine.close()
    print(f"wrote {out}" if ok else f"could not write {out}")
    return 0 if ok else 1


def main(out: Path) -> int:
    app = QApplication(sys.argv[:1])
    engine = Engine()
    window = MainWindow(engine, Desk())
    window.resize(960, 640)
    window.show()
    deadline = time.monotonic() + 30
    while not window.bridge.idle and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.05)
    app.processEvents()
    folder = Path("~/Documents/Sales 2026")  # shown as written; nothing is opened
    window.chat.reset(folder)
    window.stack.setCurrentWidget(window.chat)
    window._on_event(SandboxStatus(SandboxState.READY, "Ready (software emulation)"))
    window.chat.add_user("Add up the three monthly sales files and write a short report with a chart.")
    calls = [
        ("c1", "list_files", {}, "List the files in the workspace", "jan.csv\nfeb.csv\nmar.csv"),
        ("c2", "run_command", {"command": "python3 make_chart.py"}, "Run a command: python3 make_chart.py",
         "wrote chart.png"),
        ("c3", "write_file", {"path": "report.md", "content": "# Sales, first quarter\n…"}, "Write report.md", ""),
    ]  # fmt: skip
    events: list[DeskEvent] = []
    for cid, name, args, summary, output in calls:
        events += [ToolCalled(cid, name, args, summary), ToolFinished(cid, name, False, summary, output, 0.4)]
    answer = (
        "Done. Sales rose from 41,200 in January to 48,900 in March (+19%). I wrote report.md with a "
        "table per month and saved the chart as chart.png. Your original files are unchanged."
    )
    events += [TextDelta(answer), Finished(answer, Usage(1200, 300), 4)]
    for ev in events:
        window._on_event(ev)
    window.chat.cards["c2"].toggle.click()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    screen = window.screen()
    image = screen.grabWindow(window.winId()) if screen is not None else window.grab()
    if image.isNull():
        image = window.grab()
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = image.save(str(out))
    window.close()
    engine.close()
    print(f"wrote {out}" if ok else f"could not write {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        sys.exit(summary_shot(Path(sys.argv[2] if len(sys.argv) > 2 else "docs/summary-undo.png")))
    if sys.argv[1:2] == ["--settings"]:
        sys.exit(settings_shot(Path(sys.argv[2] if len(sys.argv) > 2 else "docs/settings-models.png")))
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")))
