"""Previews: pictures of the files a session made, drawn inside the sandbox and shown beside the
conversation; the host only checks the picture (a PNG of bounded size) and never parses a document.

Real: the sandbox (QEMU, virtiofs, gRPC), the guest's Python and office libraries that make the
files and draw them. The fake is the model service (the loopback Messages API server in
``tests/fakes``), scripted to run one command that writes the documents.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from paddock.desk.previews import MAX_PNG, MAX_SIDE, Preview, checked_png, for_summary
from paddock.undo.changes import Change, Entry
from tests.conftest import ARTIFACTS
from tests.fakes.messages_api import text, tool
from tests.framework.desk import OpenScripted, say, wait_window

MAKE = r"""python3 - <<'PY'
import csv, docx, openpyxl, pptx
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
from reportlab.pdfgen import canvas
from openpyxl.chart import BarChart, Reference
d = docx.Document(); d.add_heading("Quarterly report", 1); d.add_paragraph("Sales rose 19% this quarter.")
t = d.add_table(rows=0, cols=2); t.style = "Table Grid"
for month, sales in [("Month", "Sales"), ("January", "41,200"), ("February", "44,750"), ("March", "48,900")]:
    cells = t.add_row().cells; cells[0].text = month; cells[1].text = sales
d.add_page_break(); d.add_heading("Next quarter", 1); d.add_paragraph("Open longer on Saturdays.")
d.save("report.docx")
wb = openpyxl.Workbook(); ws = wb.active; ws.title = "Sales"
for row in [("Month", "Sales"), ("January", 41200), ("February", 44750), ("March", 48900)]: ws.append(row)
chart = BarChart(); chart.title = "Sales by month"
chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=4), titles_from_data=True)
chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=4)); ws.add_chart(chart, "D2")
wb.save("sales.xlsx")
p = pptx.Presentation()
for title, line in [("Q1 in review", "Sales rose 19%"), ("What went well", "March was the best month"),
                    ("Next steps", "Open longer on Saturdays")]:
    s = p.slides.add_slide(p.slide_layouts[1]); s.shapes.title.text = title; s.placeholders[1].text = line
p.save("deck.pptx")
plt.bar(["Jan", "Feb", "Mar"], [41200, 44750, 48900]); plt.savefig("chart.png")
with open("sales.csv", "w", newline="") as f: csv.writer(f).writerows([("Month", "Sales"), ("January", 41200)])
c = canvas.Canvas("summary.pdf"); c.drawString(72, 720, "Summary: sales rose 19%"); c.save()
PY"""


def _png(width: int, height: int, extra: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\0" * extra


def test_the_host_shows_only_a_bounded_png() -> None:
    assert checked_png(_png(800, 600)) == (800, 600)
    assert checked_png(_png(MAX_SIDE + 1, 10)) is None  # too wide
    assert checked_png(_png(10, 0)) is None
    assert checked_png(_png(10, 10, extra=MAX_PNG)) is None  # too many bytes
    assert checked_png(b"GIF89a" + _png(10, 10)[6:]) is None  # not a PNG
    assert checked_png(b"\x89PNG\r\n\x1a\n") is None  # cut short


@pytest.mark.vm
def test_previews_of_the_documents_the_assistant_made_are_drawn_in_the_sandbox(
    qtbot: QtBot, scripted_window: OpenScripted
) -> None:
    steps = [tool("run_command", command=MAKE, timeout_s=600), text("I made the report, the sheet and the slide.")]
    before = {"old.csv": "a,b\n1,2\n"}  # there before the session: no preview
    window = scripted_window(steps, folder="Quarter", files=before).window
    say(qtbot, window, "Make the quarterly documents")
    panel = window.chat.activity
    wait_window(qtbot, window, lambda: panel.previews.count() == 6, timeout=900_000)
    shown = {panel.previews.item(i).text() for i in range(panel.previews.count())}
    assert shown == {"report.docx", "sales.xlsx", "deck.pptx", "chart.png", "sales.csv", "summary.pdf"}
    kept = ARTIFACTS / "previews"  # the guest's pictures, for docs/screenshots/previews
    kept.mkdir(parents=True, exist_ok=True)
    for name, pixmap in panel.pictures.items():
        assert 50 < pixmap.width() <= MAX_SIDE and 50 < pixmap.height() <= MAX_SIDE, name
        [item] = panel.previews.findItems(name, Qt.MatchFlag.MatchExactly)
        assert not item.icon().isNull()
        for i, page in enumerate(panel.previews.previews[name].pages):  # every page, as the guest drew it
            (kept / (f"{name}.png" if i == 0 else f"{name}.p{i + 1}.png")).write_bytes(page)
    # A picture of a document is not a blank page: the drawing has more than one colour.
    image = panel.pictures["report.docx"].toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 2
    panel.previews.itemActivated.emit(panel.previews.item(0))
    assert panel.large is not None and panel.large.isVisible()
    panel.large.close()
    # The summary shows the same pictures (#20): the files made, as they are at the end.
    qtbot.mouseClick(window.chat.finish_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.summary, timeout=120_000)
    pictures = window.summary.pictures
    assert pictures.isVisible() and set(pictures.pictures) == shown
    listed = [pictures.item(i).text() for i in range(pictures.count())]
    made = [window.summary.changes.item(i).text().split(": ", 1)[1] for i in range(window.summary.changes.count())]
    assert listed == [m for m in made if m in shown]  # in the order of the list of changes
    pictures.itemActivated.emit(pictures.item(0))
    assert pictures.large is not None and pictures.large.isVisible()
    pictures.large.close()


def test_the_summary_leaves_out_a_picture_of_an_earlier_version() -> None:
    now, earlier = Entry(10, 2, 0o644), Entry(9, 1, 0o644)
    drawn = {"a.png": (Preview("a.png", b"", 1, 1), now), "b.docx": (Preview("b.docx", b"", 1, 1), earlier),
             "gone.pdf": (Preview("gone.pdf", b"", 1, 1), now)}  # fmt: skip
    changes = [Change("a.png", "created"), Change("b.docx", "changed"), Change("gone.pdf", "deleted")]
    pictures = for_summary(drawn, {"a.png": now, "b.docx": now}, changes)
    assert [p.path for p in pictures] == ["a.png"]
