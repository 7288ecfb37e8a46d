"""Answers rendered from Markdown as they stream, and links that open only after a question naming
the site. The answer text is fed as the ``TextDelta`` events the assistant loop publishes (no
model needed to draw it); clicks are real mouse clicks on the rendered link."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QImage, QTextTable
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from paddock.ui.answer import AnswerView
from paddock.ui.chat import ChatPage

ANSWER = """## Sales, first quarter

The totals by month:

| Month | Sales |
|-------|------:|
| January | 41,200 |
| March | 48,900 |

- sales rose **19%**
- see [the report](https://exämple.com/report) for more

<b>raw html</b>
"""


def _streamed(qtbot: QtBot, text: str) -> tuple[ChatPage, AnswerView]:
    page = ChatPage()
    qtbot.addWidget(page)
    page.resize(700, 600)
    page.show()
    for i in range(0, len(text), 7):  # as the model streams it: a few characters at a time
        page.add_text(text[i : i + 7])
    assert page._answer is not None
    page.set_working(False)  # the turn ended (what the window does on Finished): drawn whole now
    qtbot.wait(20)  # laid out
    return page, page._answer


def _link_at(view: AnswerView) -> QPoint:
    for y in range(0, view.viewport().height(), 4):
        for x in range(0, view.viewport().width(), 6):
            if view.anchorAt(QPoint(x, y)):
                return QPoint(x + 2, y + 2)
    raise AssertionError("no link is drawn")


def test_markdown_renders_headings_tables_lists_but_no_html(qtbot: QtBot) -> None:
    _, view = _streamed(qtbot, ANSWER)
    doc = view.document()
    assert view.text() == ANSWER
    heading = doc.begin()
    assert heading.text() == "Sales, first quarter" and heading.blockFormat().headingLevel() == 2
    tables = [f for f in doc.rootFrame().childFrames() if isinstance(f, QTextTable)]
    assert len(tables) == 1 and (tables[0].rows(), tables[0].columns()) == (3, 2)
    assert tables[0].cellAt(2, 1).firstCursorPosition().block().text() == "48,900"
    lists = {
        doc.findBlock(p).textList() is not None for p in range(doc.characterCount()) if "19%" in doc.findBlock(p).text()
    }
    assert lists == {True}
    assert "<b>raw html</b>" in doc.toPlainText()  # shown as the text it is, never as markup
    assert view.height() > 150  # grown to its content, no scroll bar inside the conversation


def test_a_link_opens_only_after_the_person_said_yes_to_the_named_site(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    _, view = _streamed(qtbot, ANSWER)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_link_at(view))
    box = view.link_box
    assert box is not None and box.isVisible() and not opened
    assert "xn--exmple-cua.com" in box.text()  # the real host, in the form a look-alike cannot hide in
    box.findChild(QPushButton, "keepLinkClosed").click()
    assert not opened
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_link_at(view))
    assert view.link_box is not None
    view.link_box.findChild(QPushButton, "openLink").click()
    assert [u.host() for u in opened] == ["exämple.com"]


def test_other_links_and_images_are_never_opened_or_loaded(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    picture = tmp_path / "big.png"
    image = QImage(400, 400, QImage.Format.Format_RGB32)
    image.fill(0xFF0000)
    assert image.save(str(picture))
    _, view = _streamed(
        qtbot, f"![chart]({QUrl.fromLocalFile(str(picture)).toString()})\n\n[notes](file:///etc/passwd)\n"
    )
    assert view.height() < 200  # the 400-pixel picture on the disk was not loaded
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_link_at(view))
    box = view.link_box
    assert box is not None and box.windowTitle() == "Link not opened"
    assert box.findChild(QPushButton, "openLink") is None
    box.close()
    assert not opened


def test_the_chat_streams_into_one_answer_per_reply(qtbot: QtBot) -> None:
    page, view = _streamed(qtbot, "Hello **there**")
    page.add_text(", and more.")
    assert view.text() == "Hello **there**, and more."
    qtbot.waitUntil(lambda: view.document().toPlainText() == "Hello there, and more.", timeout=2000)
    page.add_user("next")
    page.add_text("Second")
    assert page._answer is not view and page._answer is not None and page._answer.text() == "Second"


def test_a_long_streamed_answer_is_drawn_a_few_times_not_per_token(qtbot: QtBot) -> None:
    """Drawing the whole answer per streamed token costs the square of its length (#20 review):
    tokens that come close together are drawn together, and the last ones are never left out."""
    page = ChatPage()
    qtbot.addWidget(page)
    page.show()
    rows = "".join(f"| {i} | row {i} |\n" for i in range(400))
    text = "# Sales\n\n| month | total |\n|---|---|\n" + rows
    for i in range(0, len(text), 4):
        page.add_text(text[i : i + 4])
    view = page._answer
    assert view is not None and view.text() == text
    assert view.renders <= 3, f"drawn {view.renders} times for {len(text) // 4} pieces"
    qtbot.waitUntil(lambda: "row 399" in view.document().toPlainText(), timeout=2000)  # the rest, soon after
    page.add_text("\nAnd the end.")
    page.set_working(False)
    assert "And the end." in view.document().toPlainText()
