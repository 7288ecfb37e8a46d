"""Tool cards in plain words: the title says what was done and to which file; a running card shows
the time so far and the last lines of output; Details hold the command, its output and timing.
The events are the ones the assistant loop publishes (``ToolCalled``, ``ToolOutput``,
``ToolFinished``), fed to the chat page; tests/ui/test_window.py shows the same with the real VM."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from paddock.desk import ToolCalled, ToolFinished, ToolOutput, card_title
from paddock.ui.chat import ChatPage

BODY = "$ python3 make_chart.py\n[exit status 0]\n--- stdout ---\nwrote chart.png\n\n--- stderr ---\n"


def test_a_running_card_shows_time_and_live_output_then_plain_details(qtbot: QtBot) -> None:
    page = ChatPage()
    qtbot.addWidget(page)
    page.show()
    page.tool_event(ToolCalled("c1", "run_command", {"command": "python3 make_chart.py"}, "Run a command: …"))
    card = page.cards["c1"]
    assert card.summary.text() == "Running a command" and card.status.accessibleName() == "Working"
    qtbot.waitUntil(lambda: card.elapsed.text() != "", timeout=3000)  # ticks every second
    assert "s" in card.elapsed.text() or "second" in card.elapsed.text()
    for i in range(10):
        page.tool_event(ToolOutput("c1", f"month {i} done\n"))
    assert card.tail.isVisible() and card.tail.text() == "month 7 done\nmonth 8 done\nmonth 9 done"
    page.tool_event(ToolOutput("c1", "x" * 20_000))
    assert len(card.output) <= 4000  # the live tail is bounded
    page.tool_event(ToolFinished("c1", "run_command", False, "Run a command: …", BODY, 12.4))
    assert card.summary.text() == "Ran a command" and card.status.accessibleName() == "Done"
    assert not card.tail.isVisible() and card.elapsed.text() == "12 s"
    assert not card.detail.isVisible()
    qtbot.mouseClick(card.toggle, Qt.MouseButton.LeftButton)
    details = card.detail.toPlainText()
    assert card.detail.isVisible()
    assert details.startswith("Command: python3 make_chart.py")
    assert "It finished." in details and "What it printed:\nwrote chart.png" in details and "Took 12 s." in details
    assert "stdout" not in details and "exit status" not in details


def test_titles_name_what_was_done_and_the_file() -> None:
    assert card_title("write_file", {"path": "report.md"}, running=False) == "Made report.md"
    assert card_title("write_file", {"path": "report.md"}, running=True) == "Making report.md"
    assert card_title("edit_file", {"path": "a.txt"}, running=False) == "Changed a.txt"
    assert card_title("read_document", {"path": "q.docx"}, running=False) == "Read q.docx"
    assert card_title("run_command", {"command": "rm -rf x"}, running=False, ok=False) == (
        "Ran a command (that did not work)"
    )
    assert card_title("list_files", {}, running=False) == "Looked at the files in the folder"
    assert card_title("no_such_tool", {}, running=False) == "Used a tool"


def test_a_failed_command_says_so_in_plain_words(qtbot: QtBot) -> None:
    page = ChatPage()
    qtbot.addWidget(page)
    page.tool_event(ToolCalled("c1", "run_command", {"command": "sleep 99"}, ""))
    body = "$ sleep 99\n[was killed by signal 9]\n--- stdout ---\n\n--- stderr ---\nTerminated\n"
    page.tool_event(ToolFinished("c1", "run_command", True, "", body, 0.3))
    card = page.cards["c1"]
    assert card.status.accessibleName() == "Did not work" and card.summary.text().endswith("(that did not work)")
    details = card.detail.toPlainText()
    assert "It was stopped before it finished." in details and "Its messages:\nTerminated" in details
    assert "signal" not in details and "under a second" in details
    page.tool_event(ToolOutput("c1", "late output\n"))  # after the end: ignored
    assert not card.tail.isVisible()


def test_a_command_card_leads_with_the_models_purpose_and_keeps_the_command_under_details(qtbot: QtBot) -> None:
    from paddock.assistant.tools import TOOLS

    schema = TOOLS["run_command"].schema["properties"]
    assert "purpose" in schema and "one short sentence" in schema["purpose"]["description"]  # the model is asked
    page = ChatPage()
    qtbot.addWidget(page)
    args = {"purpose": "Add up the sales in the three monthly files", "command": "python3 total.py jan.csv feb.csv"}
    page.tool_event(ToolCalled("c1", "run_command", args, ""))
    card = page.cards["c1"]
    assert card.summary.text() == "Add up the sales in the three monthly files"
    page.tool_event(ToolFinished("c1", "run_command", False, "", BODY, 1.0))
    assert card.summary.text() == "Add up the sales in the three monthly files"
    assert card.detail.toPlainText().startswith("Command: python3 total.py jan.csv feb.csv")
    assert "python3" not in card.summary.text()


def test_a_purpose_is_one_escaped_line_and_a_missing_one_falls_back() -> None:
    sneaky = {"purpose": "Tidy up\nthe files\u202e now " + "x" * 400, "command": "true"}
    title = card_title("run_command", sneaky, running=True)
    assert "\n" not in title and "\u202e" not in title and len(title) <= 170 and title.startswith("Tidy up the files")
    assert card_title("run_command", {"command": "true", "purpose": "  "}, running=False) == "Ran a command"
    assert card_title("run_command", {"command": "true", "purpose": 7}, running=True) == "Running a command"
